"""Generates elk/kibana/saved_objects.ndjson (Kibana 8.x): data views, Lens panels,
a saved search of recent alerts, the Meteoflow dashboard (data flow and alerts) and the
pipeline-health dashboard (the health samples of elk/health/ in <prefix>-metrics).

Dashboards as code: edit this file, run `python -m elk.kibana.build_saved_objects`,
commit both. Index titles use the `__PREFIX__` placeholder (replaced by setup.py
with METEOFLOW_ES_INDEX_PREFIX), like the index templates.
"""

from __future__ import annotations

import json
from pathlib import Path

from meteoflow.contracts import STREAMING_BATCH_ACTION, counted_deadletters_kql

OUT = Path(__file__).resolve().parent / "saved_objects.ndjson"
VERSION = "8.19.0"

# data view id -> (index kind, time field)
DATA_VIEWS = {
    "meteoflow-observations": ("observations", "ingested_at"),
    "meteoflow-logs": ("logs", "@timestamp"),
    "meteoflow-deadletter": ("deadletter", "failed_at"),
    "meteoflow-alerts": ("alerts", "opened_at"),
    "meteoflow-metrics": ("metrics", "@timestamp"),
}
STREAMING_QUERY = f'event.action : "{STREAMING_BATCH_ACTION}"'
OBSERVATIONS_TOPIC = "__OBSERVATIONS_TOPIC__"  # replaced by setup.py with METEOFLOW_TOPIC_OBSERVATIONS


def data_view(view_id: str) -> dict:
    kind, time_field = DATA_VIEWS[view_id]
    return {
        "id": view_id, "type": "index-pattern", "managed": False, "references": [],
        "coreMigrationVersion": "8.8.0", "typeMigrationVersion": "8.0.0",
        "attributes": {"title": f"__PREFIX__-{kind}*", "name": f"Meteoflow {kind}", "timeFieldName": time_field,
                       "fields": "[]", "fieldAttrs": "{}", "fieldFormatMap": "{}", "runtimeFieldMap": "{}",
                       "sourceFilters": "[]", "typeMeta": "{}"},
    }


# --- Lens columns -------------------------------------------------------------------------------
def date_col(field: str) -> dict:
    return {"label": field, "dataType": "date", "operationType": "date_histogram", "sourceField": field,
            "isBucketed": True, "scale": "interval", "params": {"interval": "auto", "includeEmptyRows": True}}


def terms_col(field: str, size: int = 20, order_by: str | None = None) -> dict:
    order = {"type": "column", "columnId": order_by} if order_by else {"type": "alphabetical"}
    return {"label": field, "dataType": "string", "operationType": "terms", "sourceField": field, "isBucketed": True,
            "scale": "ordinal", "params": {"size": size, "orderBy": order, "orderDirection": "desc" if order_by else "asc"}}


def count_col(label: str = "Count") -> dict:
    return {"label": label, "dataType": "number", "operationType": "count", "sourceField": "___records___",
            "isBucketed": False, "scale": "ratio", "params": {}}


def metric_col(op: str, field: str, label: str, data_type: str = "number", **params) -> dict:
    return {"label": label, "dataType": data_type, "operationType": op, "sourceField": field, "isBucketed": False,
            "scale": "ordinal" if data_type == "string" else "ratio", "params": params}  # as Lens sets it


def lens(obj_id: str, title: str, view_id: str, columns: dict[str, dict], visualization: dict, vis_type: str,
         query: str = "") -> dict:
    return {
        "id": obj_id, "type": "lens", "managed": False,
        "coreMigrationVersion": "8.8.0", "typeMigrationVersion": "8.9.0",
        "references": [{"type": "index-pattern", "id": view_id, "name": "indexpattern-datasource-layer-layer1"}],
        "attributes": {
            "title": title, "description": "", "visualizationType": vis_type,
            "state": {
                "datasourceStates": {"formBased": {"layers": {"layer1": {
                    "columns": columns, "columnOrder": list(columns), "incompleteColumns": {}}}}},
                "visualization": visualization,
                "query": {"language": "kuery", "query": query},
                "filters": [], "internalReferences": [], "adHocDataViews": {},
            },
        },
    }


def xy(obj_id, title, view_id, x, ys: dict[str, dict], split: dict | None = None, series="line", query=""):
    columns = {"x": x, **({"split": split} if split else {}), **ys}
    layer = {"layerId": "layer1", "layerType": "data", "seriesType": series, "xAccessor": "x",
             "accessors": list(ys), **({"splitAccessor": "split"} if split else {})}
    vis = {"preferredSeriesType": series, "layers": [layer], "legend": {"isVisible": True, "position": "right"},
           "valueLabels": "hide", "fittingFunction": "None"}
    return lens(obj_id, title, view_id, columns, vis, "lnsXY", query)


def table(obj_id, title, view_id, columns: dict[str, dict], query=""):
    vis = {"layerId": "layer1", "layerType": "data", "columns": [{"columnId": c} for c in columns]}
    return lens(obj_id, title, view_id, columns, vis, "lnsDatatable", query)


def recent_alerts_search() -> dict:
    source = {"query": {"query": "", "language": "kuery"}, "filter": [],
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    return {
        "id": "meteoflow-recent-alerts", "type": "search", "managed": False,
        "references": [{"type": "index-pattern", "id": "meteoflow-alerts",
                        "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}],
        "attributes": {
            "title": "Recent alerts", "description": "Incidents opened by the alerting service",
            "columns": ["rule", "region_id", "status", "severity", "summary", "resolved_at"],
            "sort": [["opened_at", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
    }


def panels() -> list[dict]:
    obs, logs, dead = "meteoflow-observations", "meteoflow-logs", "meteoflow-deadletter"
    return [
        xy("meteoflow-arrivals", "Arrivals per region", obs, date_col("ingested_at"), {"count": count_col("Observations")},
           split=terms_col("region_id", 20, "count"), series="bar_stacked"),
        xy("meteoflow-lag", "Arrival lag percentiles (s)", obs, date_col("ingested_at"), {
            f"p{p}": metric_col("percentile", "lag_seconds", f"p{p} lag", percentile=p) for p in (50, 95, 99)}),
        table("meteoflow-last-seen", "Last seen per region", obs, {
            "region": terms_col("region_id", 100),
            "last_seen": metric_col("max", "ingested_at", "Last ingested", "date"),
            "last_observed": metric_col("max", "observed_at", "Last observed", "date"),
            "lag": metric_col("last_value", "lag_seconds", "Latest lag (s)", sortField="observed_at"),
        }),
        # One per rejected record: the indexer's copy of a rejected observation is left out (meteoflow/contracts/deadletters.py).
        xy("meteoflow-deadletters", "Dead letters by service", dead, date_col("failed_at"), {"count": count_col("Dead letters")},
           split=terms_col("service", 10, "count"), series="bar_stacked", query=counted_deadletters_kql(OBSERVATIONS_TOPIC)),
        xy("meteoflow-throughput", "Streaming throughput", logs, date_col("@timestamp"), {
            "rows": metric_col("sum", "meteoflow.streaming.input_rows", "Input rows"),
            "rps": metric_col("average", "meteoflow.streaming.rows_per_second", "Rows/s")}, query=STREAMING_QUERY),
        xy("meteoflow-batch-durations", "Streaming batch durations (ms)", logs, date_col("@timestamp"), {
            "total": metric_col("average", "meteoflow.streaming.durations_ms.total", "foreachBatch total"),
            "trigger": metric_col("average", "meteoflow.streaming.durations_ms.spark_trigger", "Spark trigger"),
            "forecasts": metric_col("average", "meteoflow.streaming.durations_ms.forecasts", "Forecasts")},
           query=STREAMING_QUERY),
    ]


def health_panels() -> list[dict]:
    """The health samples (MetricSample, one `kind` per signal), one panel per question an on-call asks."""
    m = "meteoflow-metrics"
    return [
        xy("meteoflow-health-lag-records", "Consumer lag per consumer (records)", m, date_col("@timestamp"),
           {"records": metric_col("max", "lag_records", "Records not processed")},
           split=terms_col("subject", 10), query='kind : "consumer_lag"'),
        xy("meteoflow-health-lag-seconds", "Consumer lag per consumer (s)", m, date_col("@timestamp"),
           {"seconds": metric_col("max", "lag_seconds", "Age of the oldest unprocessed record (s)")},
           split=terms_col("subject", 10), query='kind : "consumer_lag"'),
        xy("meteoflow-health-staleness", "Store staleness behind Kafka (s)", m, date_col("@timestamp"),
           {"staleness": metric_col("max", "staleness_seconds", "Newest record behind Kafka's (s)")},
           split=terms_col("subject", 10), query='kind : "store_staleness"'),
        xy("meteoflow-health-restarts", "Service restarts", m, date_col("@timestamp"),
           {"restarts": metric_col("max", "restarts", "Restarts")},
           split=terms_col("subject", 20), query='kind : "service"'),
        table("meteoflow-health-services", "Services: state, uptime, restarts", m, {
            "service": terms_col("subject", 50),
            "state": metric_col("last_value", "state", "State", "string", sortField="@timestamp"),
            "up": metric_col("last_value", "up", "Up (1/0)", sortField="@timestamp"),
            "uptime": metric_col("last_value", "uptime_seconds", "Uptime (s)", sortField="@timestamp"),
            "restarts": metric_col("max", "restarts", "Restarts"),
            "exit": metric_col("last_value", "last_exit_code", "Last exit code", sortField="@timestamp"),
            "error": metric_col("last_value", "last_error.keyword", "Last error", "string", sortField="@timestamp"),
        }, query='kind : "service"'),
        table("meteoflow-health-forecast-age", "Forecast age per region", m, {
            "region": terms_col("subject", 100),
            "age": metric_col("last_value", "age_seconds", "Age of the last run (s)", sortField="@timestamp"),
            "run": metric_col("max", "model_run_at", "Last successful run", "date"),
            "status": metric_col("last_value", "forecast_status", "Status", "string", sortField="@timestamp"),
        }, query='kind : "forecast_age"'),
    ]


OVERVIEW_LAYOUT = [(0, 0, 48, 12), (0, 12, 24, 12), (24, 12, 24, 12), (0, 24, 24, 12), (24, 24, 24, 12),
                   (0, 36, 24, 12), (24, 36, 24, 12)]
HEALTH_LAYOUT = [(0, 0, 24, 12), (24, 0, 24, 12), (0, 12, 24, 12), (24, 12, 24, 12), (0, 24, 24, 14), (24, 24, 24, 14)]


def dashboard(dash_id: str, title: str, description: str, children: list[dict], layout: list[tuple[int, int, int, int]],
              time_from: str, refresh_ms: int) -> dict:
    if len(layout) != len(children):
        raise ValueError(f"dashboard {dash_id}: {len(children)} panels but {len(layout)} places in its layout")
    panel_list, refs = [], []
    for i, (child, (x, y, w, h)) in enumerate(zip(children, layout)):
        name = f"panel_{i}"
        panel_list.append({"version": VERSION, "type": child["type"], "panelIndex": str(i), "panelRefName": name,
                           "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i)}, "embeddableConfig": {}})
        refs.append({"type": child["type"], "id": child["id"], "name": name})
    return {
        "id": dash_id, "type": "dashboard", "managed": False, "references": refs,
        "attributes": {
            "title": title,
            "description": description,
            "panelsJSON": json.dumps(panel_list), "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": time_from, "timeTo": "now",
            "refreshInterval": {"pause": False, "value": refresh_ms},
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})},
        },
    }


def saved_objects() -> list[dict]:
    children = panels() + [recent_alerts_search()]
    health = health_panels()
    return [data_view(v) for v in DATA_VIEWS] + children + health + [
        dashboard("meteoflow-overview", "Meteoflow: data flow and alerts",
                  "Arrivals, lag, freshness per region, dead letters, streaming progress, recent alerts",
                  children, OVERVIEW_LAYOUT, "now-6h", 30000),
        # Refreshed at the sampling interval (METEOFLOW_METRICS_INTERVAL_SECONDS, 15 s).
        dashboard("meteoflow-health", "Meteoflow: pipeline health",
                  "Consumer lag per consumer, store staleness behind Kafka, services, forecast age per region",
                  health, HEALTH_LAYOUT, "now-1h", 15000),
    ]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in saved_objects())


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
