"""`python -m streaming`: run the job until SIGTERM/SIGINT, then stop the query and exit 0.

A failed batch (MongoDB or Kafka down) stops the query with its error and exits 1 without
committing the batch; the supervisor restarts the job and Spark replays the batch.
"""

from __future__ import annotations

import signal
import sys
import threading

from meteoflow.logs import start_service
from meteoflow.metrics import StreamingMetrics, serve_metrics, service_registry


def main() -> int:
    settings, log = start_service("streaming")
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s, stopping the query", signal.Signals(signum).name)
        stop.set()

    from streaming.spark import STREAMING_CONF, spark_session
    from streaming.job import StreamingJob

    # Supervisors signal the whole process group. The Spark JVM inherits an *ignored* SIGTERM
    # (pyspark already makes it ignore SIGINT), so the signal stops only this process, which then
    # stops the query and Spark in order. A SIGTERM during these seconds of start-up is ignored;
    # the supervisor's SIGKILL fallback still ends the group.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spark = spark_session(settings, app_name="meteoflow-streaming", extra_conf=STREAMING_CONF)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registry = service_registry("streaming")
    # foreachBatch runs in this driver process, so its counts are this process's to serve.
    exporter = serve_metrics("streaming", settings, registry)
    job = StreamingJob(settings, spark, log, metrics=StreamingMetrics(registry))
    query = job.start()
    log.info("streaming %s -> MongoDB %s, checkpoint %s, trigger every %gs", settings.topic_observations,
             settings.mongo_db, settings.checkpoint_dir, settings.streaming_trigger_seconds)
    failed = None
    try:
        while not stop.is_set():
            try:
                if query.awaitTermination(1):  # the query ended by itself
                    failed = query.exception()
                    break
                if job.archive is not None and (failed := job.archive.failure()) is not None:
                    break  # exit 1: restarted, the archive resumes from its checkpoint
            except Exception as exc:  # noqa: BLE001 - StreamingQueryException: a batch failed
                failed = exc
                break
    finally:
        job.stop()
        exporter.close()
        try:
            spark.stop()
        except Exception as exc:  # noqa: BLE001 - the JVM may already be gone; nothing is lost then
            log.warning("stopping Spark failed: %s", str(exc)[:300])
    if failed is not None:
        log.error("streaming query failed; the batch was not committed and will be replayed on restart: %s",
                  str(failed)[:2000])
        return 1
    log.info("streaming stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
