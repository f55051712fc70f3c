"""Issue 13's alert scenarios against the whole stack, started the way `./run.sh` starts it.

`python -m stack run` brings up Kafka, Elasticsearch, FerretDB and every service (the simulator
producer included) under the real supervisor of stack/supervisor.py, whose state file the health
sampler reads: that is what `service_down` and `crash_loop` see, and what the fault suite's own
mini-supervisor (tests/faults/harness.py `Pipeline`) does not write. Faults are injected as a user
would: `python -m stack down NAME` / `up NAME` (what `./run.sh down NAME` runs), and `kill -9`.

Slack is a local webhook recorder (tests/fakes/slack_server.py) and the dead-man's switch a local
ping recorder (tests/fakes/ping_server.py). Every scenario asserts the exact list of messages the
recorder got since it began (which rule, subject and kind each one carries, and its headline);
waits are on events (a message, a supervisor state, an incident document, a number of completed
evaluations), never on time. The time from each fault to its message is measured and printed, and
written to <run_dir>/alert-scenarios.json (docs/reliability.md, "Time from fault to message").

Run alone:  .venv/bin/python -m pytest tests/faults/test_alert_scenarios.py -s -p no:warnings
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from elasticsearch import NotFoundError
from pydantic import SecretStr

from elk.alerting.engine import Incident
from elk.alerting.rules import parse_rules
from elk.alerting.store import IncidentStore
from meteoflow.contracts import FORECAST_STATE, FORECASTS, SupervisedProcess
from meteoflow.es import make_es_client
from meteoflow.mongo import database, make_mongo_client
from meteoflow.settings import REPO_ROOT, Settings
from stack.services import SERVICES
from stack.supervisor import read_state
from tests.fakes.ping_server import PingServer
from tests.fakes.slack_server import SlackServer
from tests.faults.harness import pipeline_settings, settings_env, wait_until

pytestmark = pytest.mark.faults

# 5000 keeps every port of this stack (14092 ... 32017) below Linux's ephemeral range (32768+):
# at 25000 all of them were in it, and Elasticsearch once failed to bind 34200, which a client
# connection of another test held as its local port.
PORT_OFFSET = int(os.environ.get("METEOFLOW_ALERT_SCENARIOS_PORT_OFFSET", "5000"))
RUN_DIR = REPO_ROOT / ".run" / "alerts"
REGIONS = 4  # the first four regions of Senegal: enough for digests, light on Prophet
PROCESSES = ("kafka", "elasticsearch", "ferretdb", *SERVICES)  # what `./run.sh` starts and supervises

# Timings of the test stack. Thresholds written in "intervals" scale with the simulator's 5 s.
SIMULATOR_INTERVAL = 5.0
EVAL_INTERVAL = 2.0  # METEOFLOW_ALERT_EVAL_INTERVAL_SECONDS
METRICS_INTERVAL = 2.0  # METEOFLOW_METRICS_INTERVAL_SECONDS
SUPERVISOR = dict(
    supervisor_backoff_initial_seconds=0.5,
    supervisor_backoff_max_seconds=10.0,  # the retry delay in crash-loop
    supervisor_crash_loop_exits=3,
    supervisor_healthy_after_seconds=45.0,  # up this long after a crash-loop: recovered
)
# The shipped rules file with its inhibit tree untouched; only pending periods change. Group
# timings are left unset, so they scale with the 2 s evaluation interval (group_wait 4 s).
FOR_SECONDS = {
    "service_down": 10.0,  # shipped 30 s; still far longer than a restart with back-off (0.5-1 s)
    # Shipped unset: one evaluation interval, 30 s in production, 2 s here. When a cause clears, the
    # symptoms it held start that period again: it is the time the shipper has to bring Elasticsearch
    # up to date after `up shipper`. 20 s keeps a margin like production's (2 s passed too, thanks to
    # the seconds `up` waits for the shipper to be healthy, but with little to spare).
    "region_silence": 20.0,
}


def scenario_rules() -> dict:
    data = yaml.safe_load((REPO_ROOT / "elk" / "alert_rules.yaml").read_text())
    for rule, seconds in FOR_SECONDS.items():
        data[rule] = {**(data.get(rule) or {}), "for_seconds": seconds}
    parse_rules(data, "the scenarios' rules")  # fails here, naming the field, if the shipped file moved on
    return data


# Unset group timings scale with the evaluation interval: what the service computes from this file.
GROUP_WAIT = parse_rules(scenario_rules()).grouping(EVAL_INTERVAL).wait


def scenario_settings(tmp: Path, slack_url: str, ping_url: str) -> Settings:
    rules = tmp / "alert_rules.yaml"
    rules.write_text(yaml.safe_dump(scenario_rules(), sort_keys=False))
    senegal = json.loads((REPO_ROOT / "producer" / "regions_senegal.json").read_text())
    regions = tmp / "regions.json"
    regions.write_text(json.dumps({"regions": senegal["regions"][:REGIONS]}))
    return pipeline_settings(
        RUN_DIR, PORT_OFFSET,
        regions_file=regions,
        simulator_interval_seconds=SIMULATOR_INTERVAL, simulator_backfill_hours=26, simulator_speed=36000.0,
        streaming_trigger_seconds=2.0,
        forecast_horizon_hours=6, forecast_history_days=2, forecast_retry_seconds=5.0, forecast_workers=1,
        alert_rules_file=rules, alert_eval_interval_seconds=EVAL_INTERVAL, metrics_interval_seconds=METRICS_INTERVAL,
        slack_webhook_url=SecretStr(slack_url), alert_heartbeat_url=SecretStr(ping_url),
        **SUPERVISOR,
    )


# --- what the Slack recorder got ------------------------------------------------------------
# Deliveries are `<rule>|<subject>|<opened_at>|<kind>` (elk/alerting/engine.py), named in each
# message's context block (a digest names its first five).
_DELIVERY = re.compile(r"`([a-z_]+)\|([^`|]+)\|\d{8}T\d{6}\.\d{6}Z\|(alert|recovery|reminder-\d+)`")


@dataclass(frozen=True)
class Message:
    at: float  # wall clock when the recorder answered 200
    header: str
    text: str
    deliveries: tuple[tuple[str, str, str], ...]  # (rule, subject, kind)

    @classmethod
    def parse(cls, body: dict) -> "Message":
        blocks = body.get("blocks") or []
        context = " ".join(el.get("text", "") for b in blocks if b.get("type") == "context"
                           for el in b.get("elements", []))
        return cls(at=body["at"], header=blocks[0]["text"]["text"] if blocks else "", text=body.get("text", ""),
                   deliveries=tuple(_DELIVERY.findall(context)))


@dataclass
class AlertStack:
    """The stack of `python -m stack run` on its own ports and run directory, and what the tests read."""

    settings: Settings
    slack: SlackServer
    pings: PingServer
    run: subprocess.Popen | None = None
    figures: dict = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"[alerts {time.monotonic() - self.started_at:6.1f} s] {text}", flush=True)

    # --- the stack ---------------------------------------------------------------------------
    def command(self, *args: str, check: bool = True) -> float:
        """`python -m stack ARGS` (what ./run.sh runs) with the test's settings; returns when it was issued."""
        issued = time.time()
        result = subprocess.run([sys.executable, "-m", "stack", *args], env=settings_env(self.settings),
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0 or not check, f"stack {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        self.say(f"stack {' '.join(args)} done in {time.time() - issued:.1f} s")
        return issued

    def start(self) -> None:
        if (RUN_DIR / "pids").exists():
            self.command("down")  # whatever a previous run left (its supervisor first)
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        RUN_DIR.mkdir(parents=True)
        out = open(RUN_DIR / "stack-run.out", "ab")
        self.run = subprocess.Popen([sys.executable, "-m", "stack", "run"], env=settings_env(self.settings),
                                    cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.say(f"python -m stack run (pid {self.run.pid}); output in {RUN_DIR / 'stack-run.out'}")

        def all_up():
            if self.run.poll() is not None:  # pytest.fail is no Exception: wait_until does not swallow it
                output = (RUN_DIR / "stack-run.out").read_text()[-3000:]
                pytest.fail(f"stack run exited {self.run.returncode}:\n{output}")
            state = read_state(self.settings)
            return state is not None and all(state.processes.get(n, None) and state.processes[n].state == "up"
                                             for n in PROCESSES)

        wait_until(all_up, 600, "every server and service up under the supervisor of `stack run`", every=1.0)
        self.figures["stack_up_seconds"] = round(time.monotonic() - self.started_at, 1)
        self.say("every server and service is up")

    def stop(self) -> None:
        if self.run is not None and self.run.poll() is None:
            self.run.send_signal(signal.SIGTERM)  # what Ctrl-C on ./run.sh does: it stops everything
            try:
                self.run.wait(180)
            except subprocess.TimeoutExpired:
                self.say("stack run did not stop within 180 s")
        self.command("down", check=False)  # and make sure

    def process(self, name: str) -> SupervisedProcess | None:
        state = read_state(self.settings)
        return state.processes.get(name) if state else None

    def pid(self, name: str) -> int | None:
        return SERVICES[name](self.settings).recorded_pid()

    # --- the stores --------------------------------------------------------------------------
    def es(self):
        return make_es_client(self.settings, request_timeout=10, max_retries=0)

    def evaluations(self) -> int:
        """Completed evaluations of the alerting service that reached Elasticsearch: each writes its
        heartbeat document once, after the evaluation, so the document's version counts them."""
        es = self.es()
        try:
            return int(es.get(index=self.settings.index("heartbeats"), id="alerting")["_version"])
        except NotFoundError:
            return 0
        finally:
            es.close()

    def evaluations_without_elasticsearch(self) -> int:
        """Evaluations that ran from the sampler's memory (Elasticsearch refused a read or write): the
        service logs one line as each begins, and another if it failed (then it pinged nothing)."""
        text = (self.settings.run_dir / "logs" / "alerting.log").read_text(errors="replace")
        return text.count("evaluating without it") - text.count("evaluation without elasticsearch failed")

    def wait_evaluations(self, count: int, what: str) -> None:
        target = self.evaluations() + count
        wait_until(lambda: self.evaluations() >= target, 60 + count * EVAL_INTERVAL * 10,
                   f"{count} more evaluations ({what})")

    def open_incidents(self) -> dict[tuple[str, str], Incident]:
        """Pending (held back ones included) and firing incidents."""
        es = self.es()
        try:
            return IncidentStore(self.settings, es).open()
        finally:
            es.close()

    def fired(self) -> list[Incident]:
        es = self.es()
        try:
            return IncidentStore(self.settings, es).all()
        finally:
            es.close()

    def held(self, seen: dict[tuple[str, str], set[str]] | None = None) -> dict[tuple[str, str], str]:
        """Incidents held back now: (rule, subject) -> the "rule|subject" that explains it (added to `seen`)."""
        held = {k: i.inhibited_by for k, i in self.open_incidents().items() if i.inhibited_by}
        for key, cause in held.items():
            if seen is not None:
                seen.setdefault(key, set()).add(cause)
        return held

    def forecasts_for_every_region(self) -> bool:
        client = make_mongo_client(self.settings, serverSelectionTimeoutMS=3000)
        try:
            db = database(self.settings, client)
            ok = {s["_id"] for s in db[FORECAST_STATE].find({"status": "ok"}, {"_id": 1})}
            with_forecasts = set(db[FORECASTS].distinct("region_id"))
            return len(ok) == REGIONS and ok <= with_forecasts
        finally:
            client.close()

    # --- the Slack recorder ------------------------------------------------------------------
    def messages(self) -> list[Message]:
        return [Message.parse(body) for body in list(self.slack.messages)]

    def wait_messages(self, base: int, count: int, timeout: float, what: str) -> list[Message]:
        """Once at least `count` messages came after the first `base`: exactly `count`, or it fails."""
        new = wait_until(lambda: (new := self.messages()[base:]) and len(new) >= count and new, timeout, what)
        assert len(new) == count, f"{len(new)} messages where {count} were due: {describe(new)}"
        return new

    def record(self, scenario: str, messages: list[Message] = (), **figures) -> None:
        figures["messages"] = [m.text for m in messages]
        self.figures.setdefault("scenarios", {})[scenario] = figures
        self.say(f"{scenario}: {json.dumps(figures)}")


def describe(messages: list[Message]) -> list[tuple[str, ...]]:
    return [d for m in messages for d in m.deliveries]


@pytest.fixture(scope="module")
def alert_stack(tmp_path_factory):
    with SlackServer() as slack, PingServer() as pings:
        stack = AlertStack(scenario_settings(tmp_path_factory.mktemp("alerts"), slack.url, pings.url), slack, pings)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            stack.figures["module_seconds"] = round(time.monotonic() - stack.started_at, 1)
            stack.figures["settings"] = dict(
                simulator_interval_seconds=SIMULATOR_INTERVAL, alert_eval_interval_seconds=EVAL_INTERVAL,
                metrics_interval_seconds=METRICS_INTERVAL, for_seconds=FOR_SECONDS,
                group_wait_seconds=GROUP_WAIT, **SUPERVISOR)
            if RUN_DIR.exists():
                (RUN_DIR / "alert-scenarios.json").write_text(json.dumps(stack.figures, indent=1))
            stack.say(f"figures: {json.dumps(stack.figures)}")


# --- the scenarios (in this order: one stack, each scenario starts from the previous one's end) ---
def test_start_up_of_the_whole_stack_sends_nothing(alert_stack):
    s = alert_stack
    wait_until(s.forecasts_for_every_region, 300, f"a forecast for each of the {REGIONS} regions", every=1.0)
    s.say("forecasts exist for every region")
    s.wait_evaluations(10, "after the first forecasts")
    assert s.messages() == [], "start-up sent messages"
    assert s.fired() == [], "an incident fired during start-up"
    s.record("start-up", seconds_to_forecasts=round(time.monotonic() - s.started_at, 1),
             open_incidents=[f"{k[0]}|{k[1]}" for k in s.open_incidents()])


def test_the_heartbeat_url_gets_a_ping_per_evaluation(alert_stack):
    s = alert_stack

    def counts() -> tuple[int, int, int] | None:
        """(evaluations, pings, of which without Elasticsearch) read between two equal readings: the
        ping follows its evaluation's heartbeat write (or log line), so at most one is on its way."""
        before = (s.evaluations(), s.evaluations_without_elasticsearch())
        pings = len(s.pings.pings)
        after = (s.evaluations(), s.evaluations_without_elasticsearch())
        return (sum(before), pings, before[1]) if after == before else None

    first = wait_until(counts, 30, "a quiet moment between two evaluations", every=0.1)
    s.wait_evaluations(15, "to count pings")
    last = wait_until(counts, 30, "a quiet moment between two evaluations", every=0.1)
    for evaluations, pings, _ in (first, last):
        assert evaluations - 1 <= pings <= evaluations, f"{pings} pings for {evaluations} evaluations"
    assert last[0] - first[0] >= 15
    assert {(p["method"], p["path"]) for p in s.pings.pings} == {("GET", s.pings.path)}
    s.record("heartbeat", evaluations=last[0], pings=last[1], of_which_without_elasticsearch=last[2],
             window={"evaluations": last[0] - first[0], "pings": last[1] - first[1]})


def settle_after(stack: AlertStack, what: str) -> None:
    """Nothing is pending any more (held symptoms clear as the pipeline catches up; a held one never
    fired), then long enough for a notification created meanwhile to have been grouped and sent."""
    wait_until(lambda: not stack.open_incidents(), 240, f"no pending or firing incident ({what})")
    stack.wait_evaluations(int(GROUP_WAIT / EVAL_INTERVAL) + 3, "past the group wait")


def held_back(seen: dict[tuple[str, str], set[str]]) -> list[str]:
    return sorted(f"{rule}|{subject} by {', '.join(sorted(causes))}" for (rule, subject), causes in seen.items())


def test_a_stopped_shipper_is_one_message_naming_it_and_one_recovery(alert_stack):
    s = alert_stack
    base = len(s.messages())
    regions = sorted(r["id"] for r in json.loads(s.settings.regions_file.read_text())["regions"])
    seen: dict[tuple[str, str], set[str]] = {}

    stopped = s.command("down", "shipper")
    [alert] = s.wait_messages(base, 1, 180, "the shipping-stopped message")
    assert alert.deliveries == (("service_down", "shipper", "alert"),), alert
    assert alert.header == ":rotating_light: [CRITICAL] Elasticsearch shipping stopped (shipper down)"
    assert "shipper is held" in alert.text and "./run.sh up shipper" in alert.text, alert.text

    # The regions fall silent in Elasticsearch while Kafka still gets them: held back, not sent...
    silenced = {("region_silence", r): "service_down|shipper" for r in regions}
    wait_until(lambda: silenced.items() <= s.held(seen).items(), 180,
               "every region silent in Elasticsearch and held back by the stopped shipper")
    # ...even once they would have fired on their own (pending period + group wait).
    s.wait_evaluations(int((FOR_SECONDS["region_silence"] + GROUP_WAIT) / EVAL_INTERVAL) + 2,
                       "past the silence's pending period")
    s.held(seen)
    assert describe(s.messages()[base:]) == [("service_down", "shipper", "alert")]

    started = s.command("up", "shipper")
    [_, recovery] = s.wait_messages(base, 2, 180, "the recovery")
    assert recovery.deliveries == (("service_down", "shipper", "recovery"),), recovery
    assert recovery.header.startswith(
        ":white_check_mark: [CRITICAL] Recovered: Elasticsearch shipping stopped (shipper down) (after "), recovery
    settle_after(s, "Elasticsearch caught up")
    assert describe(s.messages()[base:]) == [("service_down", "shipper", "alert"),
                                             ("service_down", "shipper", "recovery")]
    [incident] = [i for i in s.fired() if i.rule == "service_down"]
    assert incident.status == "resolved" and [(n.kind, n.status) for n in incident.notifications] == [
        ("alert", "sent"), ("recovery", "sent")]
    s.record("shipper stopped", s.messages()[base:], alert_seconds=round(alert.at - stopped, 1),
             recovery_seconds=round(recovery.at - started, 1), held_back=held_back(seen))


def test_a_streaming_job_killed_until_crash_loop_is_one_message_naming_it_and_one_recovery(alert_stack):
    s = alert_stack
    base = len(s.messages())
    killed: list[tuple[int, float]] = []  # (pid, when)
    seen: dict[tuple[str, str], set[str]] = {}

    def back_or_looping() -> SupervisedProcess | None:
        proc = s.process("streaming")
        if proc is None:
            return None
        if proc.state == "crash-loop":
            return proc
        pid = s.pid("streaming")
        return proc if proc.state == "up" and pid is not None and pid not in {p for p, _ in killed} else None

    while True:
        proc = wait_until(back_or_looping, 120, "the streaming job back up (or in crash-loop)", every=0.2)
        if proc.state == "crash-loop":
            break
        assert len(killed) < 10, "ten kills and still no crash-loop"
        pid = s.pid("streaming")
        when = time.time()
        os.killpg(pid, signal.SIGKILL)  # kill -9 the job (its process group: the Python driver and Spark's JVM)
        killed.append((pid, when))
        s.say(f"kill -9 streaming (pid {pid}), #{len(killed)}")

    def messages(count: int):
        s.held(seen)
        new = s.messages()[base:]
        return new if len(new) >= count else None

    first = wait_until(lambda: messages(1), 180, "the crash-loop message")
    assert describe(first) == [("crash_loop", "streaming", "alert")], first
    alert = first[0]
    assert alert.header == (":rotating_light: [CRITICAL] Streaming stopped, nothing is written to MongoDB or "
                            "forecast (streaming in crash-loop)"), alert
    assert "streaming keeps exiting (crash-loop" in alert.text and "signal SIGKILL" in alert.text, alert.text

    # Left alone, the supervisor retries after its crash-loop delay; up `healthy_after`, it is recovered.
    both = wait_until(lambda: messages(2), SUPERVISOR["supervisor_backoff_max_seconds"]
                      + SUPERVISOR["supervisor_healthy_after_seconds"] + 240, "the crash-loop recovery")
    assert describe(both) == [("crash_loop", "streaming", "alert"), ("crash_loop", "streaming", "recovery")], both
    recovery = both[1]
    assert recovery.header.startswith(":white_check_mark: [CRITICAL] Recovered: Streaming stopped, nothing is "
                                      "written to MongoDB or forecast (streaming in crash-loop) (after "), recovery
    recovered_at = s.process("streaming").since.timestamp()  # when the supervisor declared it recovered

    def symptoms_cleared() -> bool:
        s.held(seen)
        return not s.open_incidents()

    wait_until(symptoms_cleared, 240, "the held symptoms to clear")
    settle_after(s, "the job caught up")
    assert describe(s.messages()[base:]) == [("crash_loop", "streaming", "alert"),
                                             ("crash_loop", "streaming", "recovery")], s.messages()[base:]
    # Not vacuous: the job's lag grew while it was down, and the crash-loop held it back.
    assert "crash_loop|streaming" in seen.get(("consumer_lag", "streaming"), set()), held_back(seen)
    s.record("streaming crash-loop", s.messages()[base:], kills=len(killed),
             alert_seconds_from_last_kill=round(alert.at - killed[-1][1], 1),
             alert_seconds_from_first_kill=round(alert.at - killed[0][1], 1),
             recovery_seconds_from_recovered=round(recovery.at - recovered_at, 1), held_back=held_back(seen))


def test_a_silenced_stopped_producer_sends_nothing_and_is_recorded_silenced(alert_stack):
    """A silence made through the web app's API (POST /api/silences) on service_down of the producer:
    `down producer` sends nothing, its incident is recorded with the notification "silenced", and
    the regions' silence it explains is held back; `up producer`: its recovery is not sent either
    (nobody was told of the alert)."""
    s = alert_stack
    base = len(s.messages())
    api = f"http://{s.settings.bind_host}:{s.settings.webapp_port}/api/silences"
    regions = sorted(r["id"] for r in json.loads(s.settings.regions_file.read_text())["regions"])
    resp = requests.post(api, timeout=10, json={
        "rule": "service_down", "subject": "producer", "duration_seconds": 3600,
        "comment": "producer maintenance (alert scenarios)", "author": "alert-scenarios"})
    assert resp.status_code == 201, resp.text
    silence_id = resp.json()["silence"]["id"]
    wait_until(lambda: [x["state"] for x in requests.get(api, timeout=10).json()["silences"]
                        if x["id"] == silence_id] == ["active"], 30, "the silence listed active")

    def producer_incident() -> Incident | None:
        return next((i for i in s.fired() if (i.rule, i.subject) == ("service_down", "producer")), None)

    stopped = s.command("down", "producer")
    # The alert is recorded "pending" first, then held back by the silence in the same round (two writes
    # of the incident): wait for the second, as for the recovery below; a read in between saw "pending".
    incident = wait_until(lambda: (i := producer_incident()) and i.notifications
                          and all(n.status != "pending" for n in i.notifications) and i, 180,
                          "the producer's incident recorded and its alert held back")
    assert [(n.kind, n.status, n.silenced_by) for n in incident.notifications] == [("alert", "silenced", silence_id)]
    recorded = incident.notifications[0].created_at.timestamp()  # held back in the round that made it
    assert incident.title == "No new observations are published (producer down)"
    silenced = {("region_silence", r): "service_down|producer" for r in regions}
    wait_until(lambda: silenced.items() <= s.held().items(), 180,
               "every region silent and held back by the stopped producer")
    s.wait_evaluations(int((FOR_SECONDS["region_silence"] + GROUP_WAIT) / EVAL_INTERVAL) + 2,
                       "past the silence's pending period")
    assert s.messages()[base:] == []

    started = s.command("up", "producer")
    # The recovery is recorded "pending" first, then held back by the silence in the same round:
    # wait for that, not only for the incident's resolution (the clean-clone run read in between).
    incident = wait_until(lambda: (i := producer_incident()) and i.status == "resolved"
                          and all(n.status != "pending" for n in i.notifications) and i, 180,
                          "the producer's incident resolved and its recovery held back")
    assert [(n.kind, n.status) for n in incident.notifications] == [("alert", "silenced"), ("recovery", "silenced")]
    settle_after(s, "the regions report again")
    assert s.messages()[base:] == []
    assert requests.delete(f"{api}/{silence_id}", timeout=10).json()["silence"]["state"] == "expired"
    s.record("silenced producer", recorded_seconds=round(recorded - stopped, 1),
             resolved_seconds=round(incident.resolved_at.timestamp() - started, 1))
