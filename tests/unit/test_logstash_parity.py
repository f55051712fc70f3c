"""The Logstash pipeline (Docker) writes the same index names and document ids as the native
shipper (elk/shipper/documents.py), with the environment compose.yaml gives Logstash.

No Logstash runtime: the pipeline file is parsed (a small parser for Logstash's config
grammar: sections, plugins, `key => value`, arrays, hashes, if / else if / else), the routing
conditionals are evaluated for each topic, and the output's `index` and `document_id` are
rendered with Logstash's `${VAR:default}` and `%{[field]}` rules. Ruby filters cannot be run
here; the one that rejects records is checked to route them to the dead-letter kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.docker_scripts import load_script
from elk.shipper.documents import document_id, index_for_topic, kind_by_topic, to_action
from meteoflow.kafka import KafkaRecord
from meteoflow.settings import REPO_ROOT, Settings, load_settings

compose_tool = load_script("compose_tool")

PIPELINE_DIR = REPO_ROOT / "elk" / "logstash" / "pipeline"
ENV_EXAMPLE = REPO_ROOT / ".env.example"


# --- a parser for Logstash's pipeline config ---------------------------------------------

@dataclass
class Plugin:
    name: str
    settings: dict[str, object]


@dataclass
class Conditional:
    branches: list[tuple[str, list]]  # (condition text, body); "else" has condition ""


@dataclass
class Pipeline:
    sections: dict[str, list] = field(default_factory=dict)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
      | (?P<arrow>=>)
      | (?P<op>==|!=|=~|!~|<=|>=|<|>|!)
      | (?P<punct>[{}\[\],])
      | (?P<word>[^\s{}\[\],"'\#=!<>~]+)
    )""",
    re.X,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse the pipeline at offset {pos}: {text[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "comment":
            continue
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
    return tokens


class Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0):
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else (None, None)

    def take(self, value: str | None = None):
        token = self.peek()
        if value is not None and token[1] != value:
            raise ValueError(f"expected {value!r}, found {token[1]!r} (token {self.i})")
        self.i += 1
        return token

    def pipeline(self) -> Pipeline:
        result = Pipeline()
        while self.peek()[0] is not None:
            _, section = self.take()
            self.take("{")
            result.sections.setdefault(section, []).extend(self.block())
        return result

    def block(self) -> list:
        items = []
        while self.peek()[1] != "}":
            if self.peek()[1] == "if":
                items.append(self.conditional())
            else:
                _, name = self.take()
                self.take("{")
                items.append(Plugin(name, self.settings()))
        self.take("}")
        return items

    def conditional(self) -> Conditional:
        branches = []
        self.take("if")
        branches.append((self.condition(), self.body()))
        while self.peek()[1] == "else":
            self.take("else")
            if self.peek()[1] == "if":
                self.take("if")
                branches.append((self.condition(), self.body()))
            else:
                branches.append(("", self.body()))
        return Conditional(branches)

    def condition(self) -> str:
        # Everything up to the body's "{" ([field] references are bracket tokens).
        parts = []
        while self.peek()[1] != "{":
            kind, value = self.take()
            parts.append(f'"{value}"' if kind == "string" else value)
        return " ".join(parts).replace("[ ", "[").replace(" ]", "]").replace("] [", "][")

    def body(self) -> list:
        self.take("{")
        return self.block()

    def settings(self) -> dict[str, object]:
        out: dict[str, object] = {}
        while self.peek()[1] != "}":
            _, key = self.take()
            self.take("=>")
            out[key] = self.value()
        self.take("}")
        return out

    def value(self):
        kind, value = self.peek()
        if value == "[":
            self.take("[")
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return items
        if value == "{":
            self.take("{")
            return self.settings()
        self.take()
        if kind == "word" and self.peek()[1] == "{":  # a plugin as a value: `codec => plain { ... }`
            self.take("{")
            self.settings()
        return value


def parse_pipeline(text: str) -> Pipeline:
    return Parser(text).pipeline()


# --- evaluating the parts that decide index and id ------------------------------------------

def evaluate_condition(condition: str, event: dict[str, object]) -> bool:
    m = re.fullmatch(r'(\[[^ ]+\])\s*==\s*"([^"]*)"', condition)
    if m:
        return event.get(m.group(1)) == m.group(2)
    m = re.fullmatch(r"(\[[^ ]+\])", condition)
    if m:
        return bool(event.get(m.group(1)))
    raise AssertionError(f"condition not understood by this test: {condition!r}")


def run_mutations(items: list, event: dict[str, object]) -> None:
    """Apply `mutate { add_field => ... }` and conditionals; other plugins do not touch metadata here."""
    for item in items:
        if isinstance(item, Conditional):
            for condition, body in item.branches:
                if condition == "" or evaluate_condition(condition, event):
                    run_mutations(body, event)
                    break
        elif item.name == "mutate" and isinstance(item.settings.get("add_field"), dict):
            for key, value in item.settings["add_field"].items():
                event.setdefault(key, value)


def expand_env(text: str, env: dict[str, str]) -> str:
    """Logstash's ${VAR} / ${VAR:default} substitution; an unset variable without default is an error."""
    def sub(m):
        name, default = m.group(1), m.group(3)
        if name in env:
            return env[name]
        if default is None:
            raise AssertionError(f"${{{name}}} is neither set for Logstash nor defaulted")
        return default
    return re.sub(r"\$\{(\w+)(:([^}]*))?\}", sub, text)


def sprintf(text: str, event: dict[str, object]) -> str:
    def sub(m):
        key = m.group(1)
        assert key in event, f"%{{{key}}} is not set on the event"
        return str(event[key])
    return re.sub(r"%\{([^}]+)\}", sub, text)


def kafka_metadata(topic: str, partition: int, offset: int) -> dict[str, object]:
    # What the kafka input's decorate_events => "extended" puts on the event.
    return {"[@metadata][kafka][topic]": topic, "[@metadata][kafka][partition]": partition,
            "[@metadata][kafka][offset]": offset}


# --- fixtures ---------------------------------------------------------------------------------

def pipeline_files() -> list[Path]:
    return sorted(PIPELINE_DIR.glob("*.conf"))


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    files = pipeline_files()
    assert files, f"no Logstash pipeline in {PIPELINE_DIR}"
    # Logstash concatenates every file of the folder into one pipeline.
    return parse_pipeline("\n".join(p.read_text() for p in files))


def logstash_env(env_file: Path) -> dict[str, str]:
    services = compose_tool.resolve(REPO_ROOT, env_file)["services"]
    return {k: str(v) for k, v in (services["logstash"].get("environment") or {}).items() if v is not None}


@pytest.fixture(scope="module")
def compose_env() -> dict[str, str]:
    return logstash_env(ENV_EXAMPLE)


def es_output(pipeline: Pipeline) -> Plugin:
    outputs = [p for p in pipeline.sections.get("output", []) if isinstance(p, Plugin) and p.name == "elasticsearch"]
    assert len(outputs) == 1, "expected exactly one elasticsearch output, outside any conditional"
    return outputs[0]


def kafka_input(pipeline: Pipeline) -> Plugin:
    inputs = [p for p in pipeline.sections.get("input", []) if isinstance(p, Plugin) and p.name == "kafka"]
    assert len(inputs) == 1
    return inputs[0]


def route(pipeline: Pipeline, topic: str, partition: int, offset: int, env: dict[str, str]) -> tuple[str, str]:
    """(index, _id) Logstash writes a valid record of `topic` to."""
    event = kafka_metadata(topic, partition, offset)
    run_mutations(pipeline.sections["filter"], event)
    out = es_output(pipeline)
    return sprintf(expand_env(out.settings["index"], env), event), sprintf(expand_env(out.settings["document_id"], env), event)


# --- the tests ----------------------------------------------------------------------------------

def test_parser_reads_the_grammar():
    text = """
    # a comment with { braces }
    input { kafka { topics => ["a", "b"] codec => plain { charset => "UTF-8" } } }
    filter {
      if [@metadata][kafka][topic] == "a" { mutate { add_field => { "[@metadata][kind]" => "x" } } }
      else if [tags] { mutate { add_field => { "[@metadata][kind]" => "y" } } }
      else { mutate { add_field => { "[@metadata][kind]" => "z" } } }
      ruby { code => 'event.set("k", "v") # not a comment of the config }' }
    }
    output { elasticsearch { index => "${P:pre}-%{[@metadata][kind]}" hosts => ["${H}"] } }
    """
    parsed = parse_pipeline(text)
    assert kafka_input(parsed).settings["topics"] == ["a", "b"]
    assert kafka_input(parsed).settings["codec"] == "plain"  # the codec's own block is its settings
    filters = parsed.sections["filter"]
    assert [c for c, _ in filters[0].branches] == ['[@metadata][kafka][topic] == "a"', "[tags]", ""]
    assert "# not a comment" in filters[1].settings["code"]
    for topic, kind in (("a", "x"), ("b", "z")):
        event = kafka_metadata(topic, 0, 1)
        run_mutations(filters, event)
        assert event["[@metadata][kind]"] == kind
    out = es_output(parsed)
    assert sprintf(expand_env(out.settings["index"], {}), {"[@metadata][kind]": "x"}) == "pre-x"
    with pytest.raises(AssertionError, match=r"\$\{H\}"):
        expand_env(out.settings["hosts"][0], {})


def test_logstash_reads_exactly_the_shippers_topics(pipeline):
    settings = Settings()
    assert set(kafka_input(pipeline).settings["topics"]) == set(kind_by_topic(settings))
    # The id needs the partition and offset on the event: only the "extended" decoration puts them there.
    assert kafka_input(pipeline).settings.get("decorate_events") == "extended"


@pytest.mark.parametrize("partition,offset", [(0, 0), (2, 41), (1, 9_876_543_210)])
def test_valid_records_get_the_shippers_index_and_id(pipeline, compose_env, partition, offset):
    settings = Settings()  # compose.yaml's Logstash env with .env.example: the default prefix
    for topic in kind_by_topic(settings):
        index, _id = route(pipeline, topic, partition, offset, compose_env)
        assert index == index_for_topic(settings, topic)
        assert _id == document_id(topic, partition, offset)


def test_a_custom_index_prefix_reaches_logstash_and_the_services_alike(pipeline, tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "\nMETEOFLOW_ES_INDEX_PREFIX=weather-prod\n")
    env = logstash_env(env_file)
    settings = Settings(es_index_prefix="weather-prod")
    for topic in kind_by_topic(settings):
        index, _ = route(pipeline, topic, 0, 7, env)
        assert index == index_for_topic(settings, topic) and index.startswith("weather-prod-")


def test_rejected_records_go_to_the_shippers_deadletter_index_with_the_same_id(pipeline, compose_env):
    settings = Settings()
    rejecting = [
        item for cond in pipeline.sections["filter"] if isinstance(cond, Conditional)
        for condition, body in cond.branches if condition == "[@metadata][reason]" for item in body
    ]
    assert rejecting, "no `if [@metadata][reason]` block: where do rejected records go?"
    code = " ".join(str(p.settings.get("code", "")) for p in rejecting if isinstance(p, Plugin) and p.name == "ruby")
    assert re.search(r'event\.set\("\[@metadata\]\[kind\]",\s*"deadletter"\)', code)
    out = es_output(pipeline)
    for topic in kind_by_topic(settings):
        event = {**kafka_metadata(topic, 1, 5), "[@metadata][kind]": "deadletter"}
        shipper = to_action(settings, KafkaRecord(topic, 1, 5, None, b"not json"))
        assert shipper["_index"] == settings.index("deadletter")  # the shipper rejects it too
        assert sprintf(expand_env(out.settings["index"], compose_env), event) == shipper["_index"]
        assert sprintf(expand_env(out.settings["document_id"], compose_env), event) == shipper["_id"]


def test_logstash_writes_to_the_compose_elasticsearch_with_credentials(pipeline, compose_env):
    out = es_output(pipeline)
    hosts = [expand_env(h, compose_env) for h in out.settings["hosts"]]
    assert hosts == [f"http://meteoflow:{_env_example('APP_ES_PASSWORD')}@elasticsearch:9200"] or (
        out.settings.get("user") and out.settings.get("password")
    ), f"Logstash would reach Elasticsearch without the meteoflow user's credentials: {hosts}"
    assert out.settings.get("manage_template") == "false"  # templates come from es-init, never Logstash
    assert expand_env(kafka_input(pipeline).settings["bootstrap_servers"], compose_env) == "kafka:9092"


def _env_example(name: str) -> str:
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} not set in .env.example")
