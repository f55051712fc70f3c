"""The rain model: will it rain in a region in the next 3 hours? Spark MLlib over the archive.

Features per region and hour come from the hourly means of the archive and window functions over
them (values 1 and 3 hours back, 3-hour changes, whether it rained in each of the last 3 hours,
hour of day, season). Windows range over hour numbers, not rows, so a gap in the data yields a
missing lag (the row is left out), never a wrong one. The label: rain in any of the next
`LEAD_HOURS` hours. A decision tree and gradient-boosted trees are trained on the earlier part of
the time range and evaluated on the rest (a time-based hold-out: no future leaks into training);
each evaluation is stored (RainModelEvaluation), the best AUC is selected and saved, and
`predict` stores each region's latest chance (RainPrediction).

What counts as rain: `rain_1h + snow_1h > 0` where the archive has them, or OpenWeatherMap's
weather group Rain / Drizzle / Thunderstorm / Snow (the simulator's wet season sets those).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from pymongo.database import Database
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import DecisionTreeClassifier, GBTClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from meteoflow.contracts import RAIN_MODELS, RAIN_PREDICTIONS, RainModelEvaluation, RainPrediction
from streaming.archive import read_archive
from streaming.sinks import upsert_all

LEAD_HOURS = 3
HOLD_OUT_SHARE = 0.25  # the latest quarter of the hours is the hold-out
RAIN_GROUPS = ("Rain", "Drizzle", "Thunderstorm", "Snow")
LABEL_BASIS = "rain_1h + snow_1h > 0, or weather group " + "/".join(RAIN_GROUPS)
MEANS = ("temp", "humidity", "pressure", "wind_speed", "clouds")
FEATURES = (
    "temp", "humidity", "pressure", "wind_speed", "clouds", "raining",
    "temp_d3", "humidity_d3", "pressure_d3", "clouds_d3", "rained_1", "rained_2", "rained_3",
    "hour_of_day", "season_sin", "season_cos",
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class NotTrainable(ValueError):
    """The archive cannot train a classifier yet (too little data, one class only, or a hold-out of one
    class, on which a model cannot be judged)."""


def hourly(archive: DataFrame) -> DataFrame:
    """One row per region and hour: the means of the hour and whether it rained."""
    precipitation = F.coalesce(F.col("rain_1h"), F.lit(0.0)) + F.coalesce(F.col("snow_1h"), F.lit(0.0))
    wet = (precipitation > 0) | F.col("weather_main").isin(*RAIN_GROUPS)
    rows = archive.dropDuplicates(["region_id", "observed_at"]).withColumn(
        "hour_no", F.floor(F.unix_seconds("observed_at") / 3600).cast("long"))
    return rows.groupBy("region_id", "hour_no").agg(
        # clouds may be absent (OpenWeatherMap sends it nearly always): absent counts as a clear sky
        *[F.avg(F.coalesce(F.col(c), F.lit(0.0)) if c == "clouds" else F.col(c)).alias(c) for c in MEANS],
        F.max(wet.cast("int")).alias("raining"))


def features(hours: DataFrame) -> DataFrame:
    """The feature columns and `label` (null where the next LEAD_HOURS are not all known)."""
    by_region = Window.partitionBy("region_id").orderBy("hour_no")

    def at(column: str, offset: int):
        return F.max(column).over(by_region.rangeBetween(offset, offset))

    ahead = [at("raining", k) for k in range(1, LEAD_HOURS + 1)]
    label = F.when(F.greatest(*[a.isNull().cast("int") for a in ahead]) == 1, None).otherwise(
        F.greatest(*ahead).cast("double"))
    day_of_year = F.dayofyear(F.timestamp_seconds(F.col("hour_no") * 3600))
    return (hours
            .withColumn("temp_d3", F.col("temp") - at("temp", -3))
            .withColumn("humidity_d3", F.col("humidity") - at("humidity", -3))
            .withColumn("pressure_d3", F.col("pressure") - at("pressure", -3))
            .withColumn("clouds_d3", F.col("clouds") - at("clouds", -3))
            .withColumn("rained_1", at("raining", -1)).withColumn("rained_2", at("raining", -2))
            .withColumn("rained_3", at("raining", -3))
            .withColumn("hour_of_day", (F.col("hour_no") % 24).cast("double"))
            .withColumn("season_sin", F.sin(2 * 3.141592653589793 * day_of_year / 365.25))
            .withColumn("season_cos", F.cos(2 * 3.141592653589793 * day_of_year / 365.25))
            .withColumn("label", label))


def classifiers(iterations: int) -> dict[str, object]:
    return {"decision_tree": DecisionTreeClassifier(maxDepth=6, seed=7),
            "gbt": GBTClassifier(maxIter=iterations, maxDepth=4, seed=7)}


def pipeline(classifier) -> Pipeline:
    return Pipeline(stages=[VectorAssembler(inputCols=list(FEATURES), outputCol="features"), classifier])


@dataclass
class TrainReport:
    evaluations: list[RainModelEvaluation]
    selected: RainModelEvaluation


def hour_time(hour_no: int) -> datetime:
    return EPOCH + timedelta(hours=hour_no)


def train(spark: SparkSession, db: Database, location: str, models_uri: str, now: datetime | None = None,
          iterations: int = 30, progress: Callable[[str], None] = print) -> TrainReport:
    """Train and evaluate both classifiers on the archive; store the evaluations (the best selected)."""
    report = fit_and_evaluate(spark, location, models_uri, now or datetime.now(timezone.utc), iterations, progress)
    upsert_all(db[RAIN_MODELS], report.evaluations)
    return report


def fit_and_evaluate(spark: SparkSession, location: str, models_uri: str, now: datetime, iterations: int = 30,
                     progress: Callable[[str], None] = print) -> TrainReport:
    """Train both classifiers before the hold-out, evaluate them on it, save them, select the best AUC."""
    rows = features(hourly(read_archive(spark, location))).dropna(subset=[*FEATURES, "label"]).cache()
    try:
        span = rows.agg(F.min("hour_no"), F.max("hour_no"), F.count("*"), F.sum("label")).first()
        first, last, total, rainy = span[0], span[1], span[2], span[3] or 0
        if not total or rainy in (0, total) or last - first < 48:
            raise NotTrainable(f"the archive at {location} cannot train a rain model yet: {total} usable hours, "
                               f"{int(rainy)} followed by rain (need both kinds over at least 48 hours)")
        cutoff = int(last - (last - first) * HOLD_OUT_SHARE)
        training, hold_out = rows.where(F.col("hour_no") < cutoff), rows.where(F.col("hour_no") >= cutoff)
        held = hold_out.agg(F.count("*"), F.sum("label")).first()
        held_total, held_rainy = held[0], int(held[1] or 0)
        if held_rainy in (0, held_total):
            # A model judged on one class has no AUC: it could not be told from a constant guess, so
            # none is selected (a model already selected keeps serving) until the hold-out has both.
            raise NotTrainable(
                f"the archive at {location} cannot judge a rain model yet: its hold-out (the hours from "
                f"{hour_time(cutoff):%Y-%m-%d %H:00}) holds {held_total} hours, {held_rainy} followed by rain "
                "(need both kinds to measure the AUC)")
        progress(f"rain model: {total} region-hours ({int(rainy)} followed by rain within {LEAD_HOURS} h), "
                 f"training before {hour_time(cutoff):%Y-%m-%d %H:00}, hold-out after")
        evaluations = [evaluate(name, clf, training, hold_out, cutoff, models_uri, now, progress)
                       for name, clf in classifiers(iterations).items()]
    finally:
        rows.unpersist()
    best = max(evaluations, key=lambda e: (e.auc if e.auc is not None else -1, e.accuracy))
    evaluations = [e.model_copy(update={"selected": e is best}) for e in evaluations]
    selected = next(e for e in evaluations if e.selected)
    progress(f"rain model: selected {selected.model} (AUC {selected.auc})")
    return TrainReport(evaluations, selected)


def evaluate(name: str, classifier, training: DataFrame, hold_out: DataFrame, cutoff: int, models_uri: str,
             now: datetime, progress: Callable[[str], None]) -> RainModelEvaluation:
    started = time.perf_counter()
    model = pipeline(classifier).fit(training)
    seconds = time.perf_counter() - started
    scored = model.transform(hold_out)
    labels = {row.label for row in hold_out.select("label").distinct().collect()}
    auc = (BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(scored)
           if len(labels) == 2 else None)
    cells = {(int(r.label), int(r.prediction)): r["count"]
             for r in scored.groupBy("label", "prediction").count().collect()}
    tn, fp, fn, tp = (cells.get(k, 0) for k in ((0, 0), (0, 1), (1, 0), (1, 1)))
    test_rows = tn + fp + fn + tp
    uri = f"{models_uri.rstrip('/')}/rain/{now:%Y%m%dT%H%M%S}-{name}"
    model.write().overwrite().save(uri)
    evaluation = RainModelEvaluation(
        _id=RainModelEvaluation.make_id(name, now), model=name, trained_at=now, lead_hours=LEAD_HOURS,
        train_until=hour_time(cutoff), train_rows=training.count(), test_rows=test_rows,
        rain_share=(fn + tp) / test_rows, auc=auc, accuracy=(tn + tp) / test_rows, true_negatives=tn,
        false_positives=fp, false_negatives=fn, true_positives=tp, training_seconds=round(seconds, 2),
        model_uri=uri, selected=False, label_basis=LABEL_BASIS)
    progress(f"  {name}: trained in {seconds:.1f} s, AUC {auc if auc is None else round(auc, 3)}, "
             f"accuracy {evaluation.accuracy:.3f}, confusion [[tn {tn}, fp {fp}], [fn {fn}, tp {tp}]]")
    return evaluation


def selected_model(db: Database) -> RainModelEvaluation | None:
    docs = db[RAIN_MODELS].find({"selected": True}).sort("trained_at", -1).limit(1)
    return next(iter(RainModelEvaluation.from_document(d) for d in docs), None)


def predict(spark: SparkSession, db: Database, location: str, now: datetime | None = None,
            progress: Callable[[str], None] = print) -> list[RainPrediction]:
    """Each region's chance of rain in the LEAD_HOURS after its latest archived hour, with the selected model."""
    now = now or datetime.now(timezone.utc)
    chosen = selected_model(db)
    if chosen is None:
        raise NotTrainable("no rain model trained yet: run `python -m batch train-rain` first")
    rows = features(hourly(read_archive(spark, location))).dropna(subset=list(FEATURES))
    latest = Window.partitionBy("region_id").orderBy(F.desc("hour_no"))
    rows = rows.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
    scored = PipelineModel.load(chosen.model_uri).transform(rows).select(
        "region_id", "hour_no", vector_to_array("probability")[1].alias("p"))
    predictions = [RainPrediction(_id=r.region_id, region_id=r.region_id, from_hour=hour_time(r.hour_no),
                                  lead_hours=chosen.lead_hours, probability=min(1.0, max(0.0, float(r.p))),
                                  model=chosen.model, model_trained_at=chosen.trained_at, predicted_at=now)
                   for r in scored.collect()]
    upsert_all(db[RAIN_PREDICTIONS], predictions)
    progress(f"rain chances of {len(predictions)} regions stored (model {chosen.model} of "
             f"{chosen.trained_at:%Y-%m-%d %H:%M})")
    return predictions
