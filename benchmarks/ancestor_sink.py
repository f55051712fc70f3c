"""The ancestor's sink, rewritten for the baseline of benchmarks/pipeline_bench.py (not a pipeline piece).

The seed project's foreachBatch did, in every micro-batch and for every region in it:
group the batch by region and collect the names; then per region filter the batch, take
`first()` twice for lat and lon, `toPandas()` the region's (ds, y) pairs, make ONE forecast
call for that region, and for every prediction `count_documents` then `update_many` or
`insert_one`; finally `toPandas()` the region's rows again and `insert_many` them. Nothing
is cached, so each Spark action re-reads the micro-batch from Kafka.

This module does the same work against today's contracts (the normalized observation on
Kafka, POST /predict of the forecasting API, pymongo), so the two designs are timed on the
same data and the same servers. It stops taking new regions once its time budget is spent,
and reports exactly what it processed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.functions import col, from_json
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from meteoflow.mongo import make_mongo_client
from meteoflow.settings import Settings

NUMBER_FIELDS = ("lat", "lon", "temp", "feels_like", "humidity", "pressure", "dew_point", "clouds", "visibility",
                 "uvi", "wind_speed", "wind_deg", "wind_gust")
TEXT_FIELDS = ("region_id", "region_name", "weather_main", "weather_description", "weather_icon", "source",
               "batch_id")
TIME_FIELDS = ("observed_at", "sunrise", "sunset", "produced_at")
SCHEMA = StructType(
    [StructField(n, StringType()) for n in TEXT_FIELDS]
    + [StructField(n, DoubleType()) for n in NUMBER_FIELDS]
    + [StructField(n, TimestampType()) for n in TIME_FIELDS]
)


@dataclass
class AncestorRun:
    budget_seconds: float
    started: float | None = None
    finished: float | None = None
    exhausted: bool = False
    batches: int = 0
    regions_done: int = 0
    rows_stored: int = 0
    forecast_calls: int = 0
    forecast_failures: int = 0
    predictions_written: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - (self.started or time.perf_counter())


def parsed(batch: DataFrame) -> DataFrame:
    data = from_json(col("value").cast("string"), SCHEMA).alias("o")
    return batch.select(data).select("o.*")


def ancestor_batch(settings: Settings, db_name: str, run: AncestorRun):
    """The foreachBatch function, written the way the seed project wrote it."""
    predict_url = settings.forecast_api_url.rstrip("/") + "/predict"

    def process_batch(batch_df: DataFrame, batch_id: int) -> None:
        if run.started is None:
            run.started = time.perf_counter()
        if run.exhausted:
            return
        run.batches += 1
        client = make_mongo_client(settings)  # the seed opened a client in every batch
        db = client[db_name]
        weather, predictions = db["weather"], db["predictions"]
        df = parsed(batch_df)
        regions = df.groupBy("region_id").count().collect()
        for region in regions:
            if time.perf_counter() - run.started > run.budget_seconds:
                run.exhausted = True
                break
            name = region["region_id"]
            region_data = df.filter(df["region_id"] == name)
            lat = region_data.select("lat").first()[0]
            lon = region_data.select("lon").first()[0]
            series = region_data.select(col("observed_at").cast("string").alias("ds"),
                                        col("temp").alias("y")).toPandas().to_dict(orient="records")
            payload = {"latitude": float(lat), "longitude": float(lon), "data": series}
            run.forecast_calls += 1
            try:
                response = requests.post(predict_url, json=payload, timeout=settings.forecast_timeout_seconds)
            except requests.RequestException as exc:
                response = None
                run.errors.append(f"{name}: {type(exc).__name__}")
            if response is not None and response.status_code == 200:
                for prediction in response.json()["predictions"]:
                    prediction["region"] = name
                    existing = predictions.count_documents({"region": name, "timestamp": prediction["timestamp"]})
                    if existing > 0:
                        predictions.update_many({"region": name, "timestamp": prediction["timestamp"]},
                                                {"$set": {"temperature": prediction["temperature"]}})
                    else:
                        predictions.insert_one(prediction)
                    run.predictions_written += 1
            else:
                run.forecast_failures += 1
                if response is not None:
                    run.errors.append(f"{name}: HTTP {response.status_code}")
            rows = region_data
            for ts in TIME_FIELDS:
                rows = rows.withColumn(ts, col(ts).cast("string"))
            docs = rows.toPandas().to_dict(orient="records")
            if docs:
                weather.insert_many(docs)
            run.rows_stored += len(docs)
            run.regions_done += 1
        client.close()

    return process_batch


def run_ancestor(spark: SparkSession, settings: Settings, db_name: str, checkpoint: str,
                 budget_seconds: float) -> AncestorRun:
    """Read the observations topic from the beginning with the ancestor's sink until the topic is
    done or the budget is spent."""
    run = AncestorRun(budget_seconds=budget_seconds)
    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", settings.topic_observations)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(settings.streaming_max_offsets_per_trigger))
        .load()
    )
    query = (stream.writeStream.foreachBatch(ancestor_batch(settings, db_name, run))
             .option("checkpointLocation", checkpoint).trigger(availableNow=True).start())
    while query.isActive and not run.exhausted:
        query.awaitTermination(1)
    run.finished = time.perf_counter()
    if query.isActive:
        query.stop()
    return run


if __name__ == "__main__":
    print("ancestor_sink.py is the baseline sink of benchmarks/pipeline_bench.py; run that script instead.")
