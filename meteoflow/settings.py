"""The one settings object of Meteoflow.

Every host, port, topic, interval and secret lives here. Services receive a
`Settings` instance; they never read the environment themselves. Values come
from environment variables prefixed `METEOFLOW_` (or an untracked `.env` file).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from meteoflow.contracts import DEADLETTER_PAYLOAD_LIMIT, DEADLETTER_PAYLOAD_LIMIT_MAX
from meteoflow.contracts import RecordLimits
from meteoflow.errors import field_errors

REPO_ROOT = Path(__file__).resolve().parent.parent

# Kafka topic names: letters, digits, '.', '_', '-' and at most 249 characters.
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")  # scheme://rest, as Hadoop FileSystem wants

Port = int  # validated by the `ge`/`le` bounds on each field


def _port(default: int, what: str) -> int:
    return Field(default, ge=1, le=65535, description=what)


def _metrics_port(default: int, service: str) -> int:
    return Field(default, ge=0, le=65535, description=f"Prometheus /metrics exporter of the {service} (0: off)")


class SettingsError(ValueError):
    """A setting has a bad value. The message names the setting and the value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="METEOFLOW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # --- general -------------------------------------------------------------
    bind_host: str = Field("127.0.0.1", description="Address every native server and service binds to")
    allow_unauthenticated_bind: bool = Field(
        False, description="Allow a METEOFLOW_BIND_HOST other than loopback although Elasticsearch (security off), "
        "Kafka and FerretDB (no authentication), the web app and the forecasting API are open to whoever reaches "
        "that address: set it only on a trusted network (see docs/security.md)")
    run_dir: Path = Field(REPO_ROOT / ".run", description="Data, logs, pids and checkpoints of a running stack")
    cache_dir: Path = Field(REPO_ROOT / ".cache", description="Downloads (jars, distributions, binaries) reused across runs")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Lowest level of log lines written")
    java_home: Path | None = Field(None, description="JDK used for Kafka, Elasticsearch and Spark (default: the one on PATH)")
    start_timeout_seconds: float = Field(180.0, gt=0, description="How long a server may take to become healthy")

    # --- supervisor of ./run.sh and its logs ----------------------------------------
    supervisor_backoff_initial_seconds: float = Field(
        1.0, gt=0, description="Restart delay after a process exits; doubles on each exit until it stays healthy"
    )
    supervisor_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest restart delay (also the retry delay in crash-loop)")
    supervisor_crash_loop_exits: int = Field(5, ge=1, description="Exits within the window that make a crash-loop (logged and alerted)")
    supervisor_crash_loop_window_seconds: float = Field(600.0, gt=0, description="Window in which crash-loop exits are counted")
    supervisor_healthy_after_seconds: float = Field(
        60.0, gt=0, description="A restarted process up this long is healthy again: its delay resets, a crash-loop ends"
    )
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="A log under <run_dir>/logs is rotated beyond this size")
    log_backups: int = Field(5, ge=0, description="Rotated copies kept per log (name.log.1 is the newest)")

    # --- Kafka ---------------------------------------------------------------
    kafka_port: Port = _port(9092, "Kafka broker listener")
    kafka_controller_port: Port = _port(9093, "Kafka KRaft controller listener")
    kafka_bootstrap_servers: str | None = Field(None, description="Use an external Kafka instead of the native one")
    kafka_partitions: int = Field(3, ge=1, le=1000, description="Partitions of each topic created by Meteoflow")
    kafka_retention_hours: int = Field(168, ge=1, description="Topic retention (7 days, as the seeds keep)")
    kafka_heap: str = Field("512m", description="JVM heap of the native Kafka broker")
    topic_observations: str = Field("weather.observations", description="Topic of normalized observations")
    topic_deadletter: str = Field("weather.deadletter", description="Topic of rejected records, with the reason")
    topic_logs: str = Field("pipeline.logs", description="Topic of every service's JSON log lines")

    # --- Elasticsearch -------------------------------------------------------
    es_port: Port = _port(9200, "Elasticsearch HTTP")
    es_transport_port: Port = _port(9300, "Elasticsearch transport (node-to-node)")
    es_url_override: str | None = Field(None, alias="METEOFLOW_ES_URL", description="Use an external Elasticsearch")
    es_username: str | None = Field(None, description="Elasticsearch user (when security is on)")
    es_password: SecretStr | None = Field(None, description="Elasticsearch password (secret)")
    es_heap: str = Field("512m", description="JVM heap of the native Elasticsearch")
    es_index_prefix: str = Field("meteoflow", pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Prefix of every Elasticsearch index and template")
    es_retention_days: int = Field(
        14, ge=1, description="Logs, dead letters, health samples, resolved alerts, ended silences and the acks of closed "
        "incidents older than this are deleted from Elasticsearch by the alerting service (observations are kept)",
    )
    es_retention_interval_seconds: float = Field(
        3600.0, gt=0, description="How often the alerting service applies that retention (first at its start)"
    )

    # --- MongoDB wire (FerretDB natively) -------------------------------------
    mongo_port: Port = _port(27017, "MongoDB-wire server (FerretDB natively)")
    mongo_uri_override: SecretStr | None = Field(None, alias="METEOFLOW_MONGO_URI", description="Use an external MongoDB")
    mongo_db: str = Field("meteoflow", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="MongoDB database of the pipeline")
    store_backend: Literal["sqlite", "postgresql"] = Field(
        "postgresql", description="Where the native FerretDB keeps its data: postgresql (a PostgreSQL server from "
        "Debian's packages, started by the stack; 4x faster than SQLite on this pipeline's workload, BENCHMARKS.md) "
        "or sqlite (files under <run_dir>/ferretdb, no PostgreSQL). Each keeps its own data: switching starts "
        "from an empty store")
    postgres_port: Port = _port(5432, "PostgreSQL under FerretDB (METEOFLOW_STORE_BACKEND=postgresql)")
    store_id_index: bool = Field(
        True, description="PostgreSQL backend: index every FerretDB table by _id (GIN), which FerretDB does not do: "
        "without it each read or update by _id is a pass over the collection, slower as history grows (and "
        "observations by region and by day). false drops these indexes at the next start "
        "(benchmarks/store_id_index_bench.py compares both)")

    # --- records (every stage that reads them) ---------------------------------
    record_max_ahead_seconds: float = Field(
        3600.0, ge=0, description="How far after the time of processing an observed_at may lie; later ones are "
        "dead-lettered (a far-future reading would stay a region's latest for good)"
    )
    deadletter_max_payload_bytes: int = Field(
        DEADLETTER_PAYLOAD_LIMIT, ge=1024, le=DEADLETTER_PAYLOAD_LIMIT_MAX,
        description="Bytes of the original payload a dead letter keeps (its size and SHA-256 are kept too), "
        "so a dead letter always fits in a Kafka message",
    )

    # --- Spark / streaming job ------------------------------------------------
    spark_master: str = Field("local[2]", description="Spark master URL; point it at a cluster if you have one")
    spark_driver_memory: str = "1g"
    spark_executor_memory: str = Field(
        "512m", pattern=r"^[0-9]+[kmgt]?$", description="Heap of each executor on a Spark cluster (two apps must fit "
        "in one worker's METEOFLOW_SPARK_WORKER_MEMORY to share the cluster)")
    spark_cores_max: int = Field(0, ge=0, description="Most cores one application takes from a Spark cluster "
                                 "(0: all it offers); set it when several jobs share the cluster")
    spark_cluster_workers: int = Field(
        0, ge=0, le=16, description="./run.sh starts a Spark standalone master and this many workers (0: none, the "
        "job runs Spark in local mode); the job uses them unless METEOFLOW_SPARK_MASTER is set")
    spark_cluster_port: Port = _port(7077, "Spark standalone master (spark://)")
    spark_cluster_webui_port: Port = _port(
        8470, "Spark master's web UI; worker N's web UI is this port + N")
    spark_worker_cores: int = Field(1, ge=1, le=64, description="Cores each Spark worker offers")
    spark_worker_memory: str = Field("1g", pattern=r"^[0-9]+[kmgt]?$", description="Memory each Spark worker offers")
    streaming_executor_writes: Literal["auto", "on", "off"] = Field(
        "auto", description="Validate and write each micro-batch on the Spark executors, partition by partition, "
        "instead of collecting it to the driver (auto: on when METEOFLOW_SPARK_MASTER is not local)")
    streaming_executor_partitions: int = Field(
        0, ge=0, description="With executor writes, repartition each micro-batch by Kafka key into this many "
                             "partitions (0: keep one per Kafka partition, no shuffle)")
    streaming_starting_offsets: Literal["earliest", "latest"] = "earliest"
    streaming_max_offsets_per_trigger: int = Field(20000, ge=1)
    streaming_trigger_seconds: float = Field(5.0, gt=0)
    streaming_checkpoint_dir: Path | None = Field(None, description="Default: <run_dir>/checkpoints/streaming")
    # --- raw archive and batch layer (streaming/archive.py, batch/) ---------------------
    archive_enabled: bool = Field(True, description="The streaming job also writes every valid observation to the "
                                  "Parquet archive (a second query with its own checkpoint)")
    archive_uri: str | None = Field(
        None, description="Where the Parquet archive lives: any Hadoop-compatible URI (file://, s3a://, hdfs://; "
        "s3a needs the hadoop-aws jars and credentials, see README). Default: file://<run_dir>/archive")
    archive_checkpoint_uri: str | None = Field(
        None, description="Checkpoint of the archive query (reset it only together with the archive). "
        "Default: <streaming checkpoint dir>-archive")
    archive_trigger_seconds: float = Field(
        300.0, gt=0, description="How often the archive query writes (each trigger writes one file per date and "
        "region it saw: shorter means more small files). A running job starts it once it has caught up a backlog, "
        "at most this long after its start")
    models_uri: str | None = Field(
        None, description="Where batch jobs save trained models (the rain model), any Hadoop-compatible URI. "
        "Default: file://<run_dir>/models")
    rain_predict_minutes: float = Field(
        30.0, ge=0, description="How often the rain_model service (`python -m batch schedule`) stores every region's "
        "rain chance with the selected model; also how long it waits before retrying a job the archive was not "
        "ready for. 0: never (by command only)")
    rain_train_hours: float = Field(
        168.0, ge=0, description="How often the rain_model service retrains and re-selects the rain model on the "
        "archive (and at its start when no model exists). 0: never (by command only)")
    forecast_history_days: int = Field(7, ge=1, le=90)
    forecast_retry_seconds: float = Field(60.0, gt=0, description="How often regions whose forecast failed are retried")
    forecast_refresh_seconds: float = Field(
        3.0, gt=0, description="How often the streaming job's forecast thread refreshes the regions its batches "
                               "marked (forecasts run there, off the write path)")
    forecast_backlog_wait_seconds: float = Field(
        60.0, ge=0, description="While the job catches up a backlog (its last trigger did not reach the newest "
        "offsets), the forecast thread waits up to this long, so a region is fit once from its whole history, not "
        "from each partial one on the cores the batches need. 0: never waits")
    forecast_refit_min_seconds: float = Field(
        60.0, ge=0, description="A region whose last forecast succeeded is refit once its newest observation is "
        "this much newer than that forecast's, or that forecast is this old: data arriving every few seconds then "
        "costs one fit per this interval, not one per refresh. 0: refit at every refresh")

    # --- forecasting API ------------------------------------------------------
    forecast_api_port: Port = _port(8000, "Forecasting API (FastAPI)")
    forecast_api_url_override: str | None = Field(None, alias="METEOFLOW_FORECAST_API_URL", description="Use an external forecasting API")
    forecast_horizon_hours: int = Field(24, ge=1, le=168)
    forecast_min_points: int = Field(24, ge=2)
    forecast_cache_size: int = Field(
        256, ge=0, description="Forecasts the forecasting API keeps by exact input (series, horizon, model settings)")
    forecast_response_cache_size: int = Field(
        64, ge=0, description="Answers the forecasting API keeps by request body, so an identical repeat is answered "
        "without parsing it again (0: off)")
    forecast_max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest request body (413 beyond)")
    forecast_max_points: int = Field(
        2400, ge=2, description="Most points in one series (413 for /predict, an item error in a batch): 100 days "
        "hourly. Weekly seasonality needs 14 days; the streaming job sends forecast_history_days*24+1 at most; "
        "a fit of 2,160 points takes ~0.2 s (17,520: ~2 s)",
    )
    forecast_max_batch_series: int = Field(500, ge=1, description="Most series in one /predict/batch (413 beyond); "
                                           "the streaming job splits its calls by it")
    forecast_max_pending_fits: int = Field(
        1000, ge=1, description="Most fits queued or running at once; a request that needs more is answered 429 "
        "with Retry-After (at least forecast_max_batch_series)",
    )
    forecast_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest fit, from its start in a worker: a fit past it is cancelled (its worker "
        "process is killed and replaced) and answered 504; also the streaming job's HTTP timeout",
    )
    forecast_workers: int = Field(0, ge=0, description="Worker processes running fits in parallel (0: one per core)")
    forecast_worker_nice: int = Field(
        10, ge=0, le=19, description="How far the fit workers lower their CPU priority (Unix nice): fits take the "
        "cores the streaming job, the stores and the web app leave, so refits do not slow what they serve. 0: as "
        "the API")
    forecast_api_key: SecretStr | None = Field(
        None, description="When set, every endpoint of the forecasting API but /health requires it (header "
        "X-API-Key or Authorization: Bearer); the streaming job sends it (secret)",
    )
    forecast_interval_width: float = Field(
        0.95, gt=0, lt=1,
        description="Nominal level of the served band. The blend's band is split conformal, calibrated on real "
        "observed temperatures (forecasting_api/calibration.json; measured coverage in BENCHMARKS.md)",
    )
    forecast_seed: int = Field(0, ge=0, description="Seed of the optimizer and of the prophet method's Monte Carlo "
                               "band draws (same input, same forecast)")
    forecast_method: Literal["blend", "prophet"] = Field(
        "blend", description="blend: Prophet level-corrected and blended with the baselines, conformal band; "
        "prophet: the previous design (Prophet alone, its Monte Carlo band), kept as the benchmarks' baseline")
    forecast_warm_start_regions: int = Field(
        1000, ge=0, description="Regions whose last fit's parameters are kept (LRU) to warm-start their next fit "
        "(0: every fit starts cold)")
    forecast_runs_retention_days: float = Field(
        30.0, ge=1, description="How long every forecast run is kept in forecast_runs (past forecasts drawn against "
        "what happened; skill scores runs up to a day old); the latest run per region stays in forecasts")

    forecast_skill_min_pairs: int = Field(
        48, ge=1, description="Scored pairs of the forecasting API's own forecast a lead time needs (7 d window, else "
        "24 h) before its tracked skill may serve a baseline (persistence or same hour yesterday) at that lead, "
        "where the baseline's MAE beats the model's (over the last 24 h as well)")

    # --- producer -------------------------------------------------------------
    producer_source: Literal["auto", "openweathermap", "simulator", "replay"] = Field(
        "auto", description="auto: openweathermap when an API key is set, else simulator"
    )
    producer_interval_seconds: float = Field(900.0, gt=0, description="Time between scheduled runs (15 min)")
    regions_file: Path | None = Field(None, description="Regions JSON (default: the regions of Senegal)")
    owm_api_key: SecretStr | None = Field(None, description="OpenWeatherMap API key (secret)")
    owm_api: Literal["onecall", "current"] = Field("current", description="onecall = One Call 3.0; current = free 2.5")
    owm_base_url: str = "https://api.openweathermap.org"
    owm_timeout_seconds: float = Field(10.0, gt=0)
    owm_max_retries: int = Field(3, ge=0)
    owm_backoff_seconds: float = Field(1.0, ge=0, description="First retry delay; doubles on each retry (5xx, timeouts)")
    owm_max_retry_after_seconds: float = Field(
        120.0, ge=0, description="Longest 429 Retry-After the producer waits; longer fails the region for this run"
    )
    owm_backfill_hours: int = Field(
        48, ge=0, le=24 * 30, description="With One Call 3.0: hours of history back-filled through the timemachine "
        "importer on the producer's first start (resumable, within the request budget; 0: none)")
    owm_calls_per_minute: int | None = Field(
        None, ge=1, description="Request budget of the API key, shared by the producer and the importers (calls a "
        "minute, spread evenly: one every 60/N s). Default: the plan's limit, 60 (free Current Weather and One Call)")
    owm_calls_per_day: int | None = Field(
        None, ge=1, description="Request budget of the API key per UTC day, shared by the producer and the importers. "
        "Default: the plan's limit: One Call 3.0's free 1,000, Current Weather's free 1,000,000 a month (33,333)")
    import_max_distance_km: float = Field(
        50.0, gt=0, description="`python -m producer import --source isd`: a station farther than this from every "
        "region is not imported")
    replay_file: Path | None = None
    simulator_seed: int = 42
    simulator_speed: float = Field(
        240.0, gt=0, description="Simulated seconds per real second (240: one simulated hour every 15 s)"
    )
    simulator_step_minutes: int = Field(60, ge=1, description="Simulated time between two observations of a region")
    simulator_backfill_hours: int = Field(72, ge=0, le=24 * 30, description="History simulated (fast) before live")
    simulator_interval_seconds: float = Field(30.0, gt=0, description="Live simulator: time between batches")

    # --- shipper and alerting ---------------------------------------------------
    shipper_batch_size: int = Field(500, ge=1)
    alert_rules_file: Path = Field(REPO_ROOT / "elk" / "alert_rules.yaml")
    alert_eval_interval_seconds: float = Field(30.0, gt=0)
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming webhook (secret)")
    alert_heartbeat_url: SecretStr | None = Field(
        None, description="Dead-man's switch: pinged (GET) after each completed alert evaluation, "
                          "e.g. a healthchecks.io check URL (secret: such URLs carry a token)")

    metrics_interval_seconds: float = Field(
        15.0, gt=0, description="How often the alerting service samples health signals (consumer lag, store "
        "staleness, services, forecast age) into the <prefix>-metrics index")

    # --- Prometheus /metrics (the FastAPI services serve it on their own port) ----------------
    metrics_bind_host: str | None = Field(
        None, description="Address the /metrics exporters of the producer, streaming job, shipper and alerting "
        "service bind to (default: METEOFLOW_BIND_HOST; compose.yaml sets 0.0.0.0 inside the containers)")
    producer_metrics_port: Port = _metrics_port(9191, "producer")
    streaming_metrics_port: Port = _metrics_port(9192, "streaming job (Spark driver)")
    shipper_metrics_port: Port = _metrics_port(9193, "shipper")
    alerting_metrics_port: Port = _metrics_port(9194, "alerting service (with the health samples)")

    # --- web app --------------------------------------------------------------
    webapp_port: Port = _port(8080, "Web app and its API")
    webapp_refresh_seconds: float = Field(5.0, gt=0, le=3600, description="How often the web app polls its API for new data")
    webapp_dist_dir: Path | None = Field(None, description="Built React app served by the web app (default: webapp/frontend/dist)")
    webapp_write_token: SecretStr | None = Field(
        None, description="When set, the web app's writes (create or expire a silence, acknowledge an incident) "
        "require it as Authorization: Bearer; reads stay open (secret)",
    )

    @model_validator(mode="after")
    def _forecast_limits_fit_together(self) -> "Settings":
        if self.forecast_max_pending_fits < self.forecast_max_batch_series:
            raise ValueError(
                f"forecast_max_pending_fits ({self.forecast_max_pending_fits}) must be at least "
                f"forecast_max_batch_series ({self.forecast_max_batch_series}): a full batch could never be started")
        # The window [last - days, last] floored to hours holds days*24+1 hourly points.
        if self.forecast_max_points < self.forecast_history_days * 24 + 1:
            raise ValueError(
                f"forecast_max_points ({self.forecast_max_points}) must be at least forecast_history_days*24+1 "
                f"({self.forecast_history_days * 24 + 1}): the streaming job sends that many points per region")
        if self.forecast_max_points < self.forecast_min_points:
            raise ValueError(f"forecast_max_points ({self.forecast_max_points}) is below forecast_min_points "
                             f"({self.forecast_min_points})")
        return self

    @model_validator(mode="after")
    def _database_visible_on_postgresql(self) -> "Settings":
        # FerretDB 1.24 lists its PostgreSQL schemas with NOT LIKE 'pg_%', where '_' matches any
        # character: a database named pg... would look empty after FerretDB restarts.
        if self.store_backend == "postgresql" and self.mongo_db.startswith("pg"):
            raise ValueError(f"METEOFLOW_MONGO_DB={self.mongo_db!r} starts with 'pg': FerretDB on PostgreSQL "
                             "loses sight of such a database when it restarts; choose another name")
        return self

    @field_validator("topic_observations", "topic_deadletter", "topic_logs")
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not _TOPIC_RE.match(value) or value in {".", ".."}:
            raise ValueError("a Kafka topic name uses only letters, digits, '.', '_' and '-' (1-249 characters)")
        return value

    @field_validator("archive_uri", "archive_checkpoint_uri", "models_uri")
    @classmethod
    def _hadoop_uri(cls, value: str | None) -> str | None:
        if value is not None and not _URI_RE.match(value):
            raise ValueError("must be a URI with a scheme, e.g. file:///data/archive, s3a://bucket/archive or "
                             "hdfs://namenode/archive")
        return value

    @field_validator("run_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("bind_host", "metrics_bind_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value or any(c.isspace() for c in value):
            raise ValueError("must be a host name or IP address without spaces")
        return value

    @model_validator(mode="after")
    def _no_open_servers_beyond_loopback(self) -> "Settings":
        # Natively nothing listening on bind_host asks for credentials: beyond loopback, refuse
        # unless the user says the network is trusted (the only "authentication" there is).
        if not is_loopback(self.bind_host) and not self.allow_unauthenticated_bind:
            raise ValueError(
                f"METEOFLOW_BIND_HOST={self.bind_host!r} is not a loopback address, and the native servers "
                "listening on it have no authentication: Elasticsearch (security off), Kafka and FerretDB, and the "
                "web app and forecasting API, would be open to anyone who can reach it. Keep METEOFLOW_BIND_HOST="
                "127.0.0.1, or set METEOFLOW_ALLOW_UNAUTHENTICATED_BIND=true only on a trusted network "
                "(docs/security.md)")
        return self

    # --- derived values (computed, not configured twice) ------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.bind_host}:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return self.es_url_override or f"http://{self.bind_host}:{self.es_port}"

    @property
    def mongo_uri(self) -> str:
        if self.mongo_uri_override is not None:
            return self.mongo_uri_override.get_secret_value()
        return f"mongodb://{self.bind_host}:{self.mongo_port}/"

    @property
    def forecast_api_url(self) -> str:
        return self.forecast_api_url_override or f"http://{self.bind_host}:{self.forecast_api_port}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.streaming_checkpoint_dir or self.run_dir / "checkpoints" / "streaming"

    @property
    def archive_location(self) -> str:
        return self.archive_uri or (self.run_dir / "archive").as_uri()

    @property
    def models_location(self) -> str:
        return self.models_uri or (self.run_dir / "models").as_uri()

    @property
    def archive_checkpoint(self) -> str:
        if self.archive_checkpoint_uri:
            return self.archive_checkpoint_uri
        return self.checkpoint_dir.with_name(self.checkpoint_dir.name + "-archive").as_uri()

    def index(self, kind: Literal["observations", "logs", "deadletter", "alerts", "heartbeats", "metrics", "silences",
                                  "acks"]) -> str:
        """Elasticsearch index (or data stream) name for one kind of document."""
        return f"{self.es_index_prefix}-{kind}"

    @property
    def spark_cluster_url(self) -> str:
        """The standalone master ./run.sh starts when METEOFLOW_SPARK_CLUSTER_WORKERS > 0."""
        return f"spark://{self.bind_host}:{self.spark_cluster_port}"

    @property
    def executor_writes(self) -> bool:
        """Whether micro-batches are validated and written on the executors (streaming/partitions.py)."""
        if self.streaming_executor_writes == "auto":
            return not self.spark_master.startswith("local")
        return self.streaming_executor_writes == "on"

    @property
    def record_limits(self) -> RecordLimits:
        return RecordLimits(max_ahead=timedelta(seconds=self.record_max_ahead_seconds),
                            max_payload_bytes=self.deadletter_max_payload_bytes)

    @property
    def effective_interval_seconds(self) -> float:
        """Expected time between two batches of the running source (drives freshness and alerts)."""
        if self.effective_source == "simulator":
            return self.simulator_interval_seconds
        return self.producer_interval_seconds

    def owm_budget(self, api: Literal["onecall", "current"] | None = None) -> tuple[int, int]:
        """(calls a minute, calls a UTC day) of the API key for one product (default: owm_api): the
        settings, else the free plan's limits (One Call 3.0 and Current Weather are billed apart)."""
        per_day_default = 1_000 if (api or self.owm_api) == "onecall" else 33_333
        return self.owm_calls_per_minute or 60, self.owm_calls_per_day or per_day_default

    @property
    def effective_source(self) -> str:
        if self.producer_source != "auto":
            return self.producer_source
        return "openweathermap" if self.owm_api_key else "simulator"


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals. Another name is not resolved (a
    settings load does no DNS): it counts as reachable from elsewhere."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(**overrides) -> Settings:
    """Build settings, turning pydantic's errors into one readable message.

    The message names each bad setting by its environment variable and shows the
    value, e.g. `METEOFLOW_KAFKA_PORT='abc': Input should be a valid integer`.
    Secret values are never echoed.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


# Every SecretStr setting, by name and alias: its value is never echoed in an error.
_SECRET_FIELDS = {key for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
                  for key in (name, info.alias) if key}


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for e in field_errors(exc, default_field=""):
        if not e.field:  # a rule across settings: its message names them
            lines.append(f"invalid settings: {e.message}")
            continue
        env = e.field if e.field.startswith("METEOFLOW_") else f"METEOFLOW_{e.field.upper()}"
        value = "<hidden>" if e.field in _SECRET_FIELDS else e.got
        lines.append(f"invalid setting {env}" + (f"={value}" if value is not None else "") + f": {e.message}")
    return "; ".join(lines)


__all__ = ["Settings", "SettingsError", "is_loopback", "load_settings", "REPO_ROOT"]
