"""Every shape that crosses a process, defined once: Kafka messages, MongoDB documents,
Elasticsearch documents, log and metric events, and HTTP bodies.

The services only meet through these. Each room of the package holds one kind:

    common        validators the others share (plausible UTC times, one-line text)
    storage       MongoDB collections, their documents (one model each) and ids, Elasticsearch ids
    observation   the normalized observation (topic weather.observations) and its validation
    events        log and metric events read back by other services (streaming batch, producer
                  run, supervisor events and state, heartbeats, health samples)
    deadletters   the dead-letter message and how dead letters are counted
    alerting      silences and acknowledgements
    forecasting   the forecasting API's bodies
    web           the web app's API bodies (webapp/routes/), errors included

Import from here (`from meteoflow.contracts import Observation`); the rooms are an implementation detail.
"""

from meteoflow.contracts.common import (  # noqa: F401
    plausible_utc, MAX_COMMENT_CHARS, MAX_AUTHOR_CHARS, UtcTime, RuleName, Subject, IncidentId, Author, Comment,
    dig,
)
from meteoflow.contracts.storage import (  # noqa: F401
    OBSERVATIONS, HOURLY_STATS, FORECASTS, FORECAST_STATE, doc_id, kafka_doc_id, bson_millis, InvalidDocument,
    MALFORMED_DOCUMENT_ACTION, MongoDocument, iter_valid, valid_documents, ObservationDocument, ObservationPoint,
    HourlyStats, ForecastDocument, ForecastStatus, ForecastState, ForecastAttempt, FORECAST_RUNS, FORECAST_SKILL,
    ForecastModel, BASELINE_MODELS, SkillWindow, LeadHours, ForecastRunPoint, ForecastRun, ForecastSkill,
    FORECAST_SKILL_BUCKETS, FORECAST_SKILL_TARGETS, ForecastLeadPair, ForecastSkillBucket, ForecastTargets,
    DAILY_STATS, DailyPoint, DailyStats, DayReading, day_reading, RAIN_MODELS, RAIN_PREDICTIONS, RainModelName, Probability,
    RainModelEvaluation, RainPrediction,
    REGION_LATEST, RegionLatest, REGION_SERIES, SERIES_HOURS, RegionSeries, RECENT_OBSERVATIONS, RECENT_HOURS, hour_floor, hourly_stats, point_key, find_by_ids,
    PER_ID_READS, utc_day, utc_days, find_days, find_region_days, side_by_side, STORE_PROGRESS, StoreProgress,
)
from meteoflow.contracts.observation import (  # noqa: F401
    DEFAULT_MAX_AHEAD, Source, MAX_PRECIPITATION_1H, Text, RegionId, RegionName, Latitude, Longitude, TimezoneOffset, RecordLimits,
    InvalidRecord, EARLIEST_TIME, LATEST_TIME, Observation, OBSERVATION_FIELDS, REQUIRED_FIELDS, describe_exception,
    rejection_reason, loads_json, parse_json_object, validate_observation, parse_utc,
)
from meteoflow.contracts.events import (  # noqa: F401
    STREAMING_BATCH_ACTION, PRODUCER_RUN_ACTION, BACKFILL_ACTION, BackfillEvent, BackfillState, DEADLETTER_ACTION,
    BATCH_RUN_ACTION, BatchJob, BatchOutcome, BatchRunEvent, SERVICE_EXITED_ACTION,
    SERVICE_CRASH_LOOP_ACTION, SERVICE_RECOVERED_ACTION, SUPERVISOR_ACTIONS, BACKFILL_BATCH_PREFIX,
    is_backfill_batch, InvalidEvent, Logged, LogEvent, ForecastRunSummary, StreamingBatchEvent, FailedRegion,
    ProducerRunEvent, SupervisorEvent, describe_exit, SupervisedProcess, SupervisorState, Heartbeat, METRIC_KINDS,
    MetricSample,
)
from meteoflow.contracts.deadletters import (  # noqa: F401
    DEADLETTER_PAYLOAD_LIMIT, DEADLETTER_PAYLOAD_LIMIT_MAX, MAX_REASON_CHARS, MAX_KEY_CHARS, DeadLetter,
    counted_deadletters, counted_deadletters_kql,
)
from meteoflow.contracts.alerting import (  # noqa: F401
    ALERT_RULES, SILENCE_MAX_SECONDS, NotificationKind, NotificationStatus, SilenceState, Silence, Acknowledgement,
    SilenceRequest, AckRequest,
)
from meteoflow.contracts.forecasting import (  # noqa: F401
    API_KEY_HEADER, SeriesPoint, PredictRequest, Prediction, ModelFacts, PredictResponse, BatchRequest, ItemError,
    BatchItem, BatchResponse,
)
from meteoflow.contracts.web import (  # noqa: F401
    Number, WebBody, Freshness, Thresholds, ErrorBody, FieldError, ValidationErrorBody, AppHealth, ConfigResponse, ObservationBody,
    RegionSummary, RegionsResponse, TimeWindow, HourlyStat, ForecastPoint, ForecastBody, RegionResponse,
    StatusRegion, StreamingBatch, AlertBody, StatusSummary, StreamingStatus, AlertsStatus, DeadLetterEntry,
    DeadLettersStatus, AlertingStatus, StatusResponse, Sampled, ServiceHealth, LagPoint, ConsumerHealth, StoreStatus,
    StoreHealth, ForecastHealth, HealthWindow, HealthResponse, IncidentNotification, AcknowledgementBody,
    IncidentBody, IncidentsResponse, IncidentResponse, IncidentAcknowledgement, AckResponse, SilenceBody,
    SilencesResponse, SilenceResponse, ServedModel, Problem, DayRange, OverviewCard, BackfillStatus,
    OverviewResponse, ForecastRunItem, ForecastRunsResponse, VerifiedPoint, RunVerification, ForecastRunResponse,
    LeadSkill, RegionSkill, ForecastQualityResponse, HistoryWindow, DailyStat, RegionHistoryResponse, YesterdayResponse,
    RainModelBody, RainChance, RainResponse,
)
