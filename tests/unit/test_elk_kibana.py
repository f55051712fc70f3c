"""Kibana saved objects, Kibana alerting definitions and the Logstash pipeline agree with
the index templates and with the shipper."""

import json
import re
from pathlib import Path

import pytest

from elk.kibana import build_saved_objects
from elk.health.sampler import shipper_group
from elk.kibana.setup import alerting_definitions, saved_objects_ndjson
from elk.shipper.documents import document_id, kind_by_topic
from elk.templates import load_templates
from meteoflow.settings import REPO_ROOT, load_settings

KIBANA = REPO_ROOT / "elk" / "kibana"
PREFIX = "meteoflow"
TEMPLATES = load_templates(PREFIX)


def mapped_fields(kind: str) -> set[str]:
    def walk(props, prefix=""):
        for name, spec in props.items():
            yield prefix + name
            yield from (f"{prefix}{name}.{sub}" for sub in spec.get("fields", {}))  # multi-fields: last_error.keyword
            yield from walk(spec.get("properties", {}), f"{prefix}{name}.")
    return set(walk(TEMPLATES[f"{PREFIX}-{kind}"]["template"]["mappings"]["properties"]))


def kind_of_pattern(pattern: str) -> str:
    matches = [name.removeprefix(f"{PREFIX}-") for name, t in TEMPLATES.items() if pattern in t["index_patterns"]]
    assert len(matches) == 1, f"{pattern} matches no index template exactly"
    return matches[0]


def kql_fields(query: str) -> list[str]:
    return re.findall(r"([A-Za-z_@][\w.@]*)\s*:", query)


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    lines = saved_objects_ndjson(PREFIX).decode().splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]
    assert len({o["id"] for o in parsed}) == len(parsed)
    return {o["id"]: o for o in parsed}


def test_ndjson_is_generated_from_the_code():
    assert (KIBANA / "saved_objects.ndjson").read_text() == build_saved_objects.render(), \
        "run python -m elk.kibana.build_saved_objects"


def test_every_reference_resolves_and_the_dashboard_has_the_panels(objects):
    for obj in objects.values():
        for ref in obj["references"]:
            assert ref["id"] in objects and objects[ref["id"]]["type"] == ref["type"], (obj["id"], ref)
    dash = objects["meteoflow-overview"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dash["references"]}
    titles = {objects[r["id"]]["attributes"]["title"] for r in dash["references"]}
    for wanted in ("Arrivals per region", "Arrival lag percentiles (s)", "Last seen per region",
                   "Dead letters by service", "Streaming throughput", "Streaming batch durations (ms)", "Recent alerts"):
        assert wanted in titles


def test_the_health_dashboard_reads_each_signal_of_the_metrics_index(objects):
    dash = objects["meteoflow-health"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dash["references"]}
    children = [objects[r["id"]] for r in dash["references"]]
    assert all(c["references"][0]["id"] == "meteoflow-metrics" for c in children)
    assert objects["meteoflow-metrics"]["attributes"]["title"] == f"{PREFIX}-metrics*"
    kinds = {}
    for child in children:
        query = child["attributes"]["state"]["query"]["query"]
        kinds.setdefault(re.fullmatch(r'kind : "(\w+)"', query).group(1), []).append(child["attributes"]["title"])
    # every kind the sampler writes has a panel (contracts.MetricSample.kind)
    assert set(kinds) == {"consumer_lag", "store_staleness", "service", "forecast_age"}
    assert "Consumer lag per consumer (records)" in kinds["consumer_lag"]
    assert "Services: state, uptime, restarts" in kinds["service"]
    for child in children:  # one line or row per consumer, store, service or region
        layer = child["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]["layer1"]
        assert any(c["operationType"] == "terms" and c["sourceField"] == "subject" for c in layer["columns"].values())
    grid = [p["gridData"] for p in panels]
    cells = {(x, y) for g in grid for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
    assert len(cells) == sum(g["w"] * g["h"] for g in grid) and all(g["x"] + g["w"] <= 48 for g in grid), "no overlap"


def test_saved_objects_use_only_fields_the_templates_define(objects):
    view_kind = {}
    for obj in objects.values():
        if obj["type"] == "index-pattern":
            kind = kind_of_pattern(obj["attributes"]["title"])
            view_kind[obj["id"]] = kind
            assert obj["attributes"]["timeFieldName"] in mapped_fields(kind)
    checked = 0
    for obj in objects.values():
        views = [r["id"] for r in obj["references"] if r["type"] == "index-pattern"]
        if obj["type"] == "lens":
            fields = mapped_fields(view_kind[views[0]])
            state = obj["attributes"]["state"]
            for layer in state["datasourceStates"]["formBased"]["layers"].values():
                for col in layer["columns"].values():
                    used = [col["sourceField"], col["params"].get("sortField")]
                    for field in filter(None, used):
                        if field != "___records___":
                            assert field in fields, f"{obj['id']}: {field} is not in the {view_kind[views[0]]} template"
                            checked += 1
            for field in kql_fields(state["query"]["query"]):
                assert field in fields, f"{obj['id']}: query field {field}"
        elif obj["type"] == "search":
            fields = mapped_fields(view_kind[views[0]])
            for field in obj["attributes"]["columns"] + [s[0] for s in obj["attributes"]["sort"]]:
                assert field in fields, f"{obj['id']}: {field}"
                checked += 1
    assert checked >= 20


def test_kibana_rules_use_template_fields_and_no_committed_secret():
    defs = alerting_definitions(PREFIX, "https://hooks.example/secret")
    connector = defs[0][2]
    assert connector["connector_type_id"] == ".slack"
    assert "__SLACK_WEBHOOK_URL__" in (KIBANA / "alerting" / "slack_connector.json").read_text()
    rules = [body for api, _, body in defs if api == "api/alerting/rule"]
    assert len(rules) >= 2
    for rule in rules:
        p = rule["params"]
        [pattern] = p["index"]
        fields = mapped_fields(kind_of_pattern(pattern))
        for key in ("timeField", "aggField", "termField"):
            if key in p:
                assert p[key] in fields, f"{rule['name']}: {key}={p[key]}"
        for field in kql_fields(p.get("filterKuery", "")):
            assert field in fields, f"{rule['name']}: filterKuery field {field}"
        assert {a["id"] for a in rule["actions"]} == {"meteoflow-slack"}
        assert {a["group"] for a in rule["actions"]} == (
            {"threshold met", "recovered"} if rule["rule_type_id"] == ".index-threshold" else {"query matched", "recovered"})


def test_kibana_health_rules_hold_for_their_window_per_consumer_and_store():
    rules = {rid: body for api, rid, body in alerting_definitions(PREFIX, "https://hooks.example/x") if api == "api/alerting/rule"}
    for rid, kind, field in (("meteoflow-consumer-lag", "consumer_lag", "lag_seconds"),
                             ("meteoflow-store-behind", "store_staleness", "staleness_seconds")):
        p = rules[rid]["params"]
        assert p["index"] == [f"{PREFIX}-metrics*"] and p["filterKuery"].startswith(f'kind : "{kind}"')
        # min over the window: the condition held for all of it (a pending period), one alert per subject
        assert (p["aggType"], p["aggField"], p["groupBy"], p["termField"]) == ("min", field, "top", "subject")
        assert "{{context.group}}" in rules[rid]["actions"][0]["params"]["message"]
    assert 'not subject : "kafka"' in rules["meteoflow-store-behind"]["params"]["filterKuery"]


# --- Logstash: same index and _id rules as the shipper ---------------------------------------
CONF = (REPO_ROOT / "elk" / "logstash" / "pipeline" / "meteoflow.conf").read_text()


def test_logstash_routes_topics_like_the_shipper():
    settings = load_settings()
    routes = dict(re.findall(r'\[@metadata\]\[kafka\]\[topic\] == "([^"]+)"\s*\{\s*mutate \{ add_field => '
                             r'\{ "\[@metadata\]\[kind\]" => "(\w+)" \} \}', CONF))
    assert routes == kind_by_topic(settings)
    topics = json.loads(re.search(r"topics => (\[[^\]]+\])", CONF).group(1))
    assert set(topics) == set(kind_by_topic(settings))
    assert "decorate_events => \"extended\"" in CONF


def test_logstash_index_and_id_equal_the_shippers():
    settings = load_settings()
    index = re.search(r'index => "([^"]+)"', CONF).group(1)
    doc_id = re.search(r'document_id => "([^"]+)"', CONF).group(1)
    expand_env = lambda text: re.sub(r"\$\{(\w+):([^}]*)\}", lambda m: m.group(2), text)
    for topic, kind in kind_by_topic(settings).items():
        meta = {"[@metadata][kind]": kind, "[@metadata][kafka][topic]": topic,
                "[@metadata][kafka][partition]": "2", "[@metadata][kafka][offset]": "41"}
        fill = lambda text: re.sub(r"%\{([^}]+)\}", lambda m: meta[m.group(1)], expand_env(text))
        assert fill(index) == settings.index(kind)
        assert fill(doc_id) == document_id(topic, 2, 41)
    for field in ("ingested_at", "lag_seconds", "[kafka][offset]", "location"):
        assert field in CONF


def test_logstash_commits_under_the_group_whose_lag_the_health_sampler_reports():
    settings = load_settings()
    group = re.search(r'group_id => "([^"]+)"', CONF).group(1)
    assert re.sub(r"\$\{\w+:([^}]*)\}", r"\1", group) == shipper_group(settings)
    assert "${ES_INDEX_PREFIX:" in group, "the prefix follows METEOFLOW_ES_INDEX_PREFIX like the index names"
