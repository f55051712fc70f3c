"""The supervision policy of `./run.sh`, as pure state transitions: no processes, no clock.

Every call takes `now` (seconds on a monotonic clock), so tests drive time by hand.
A process that exits is restarted after an exponential delay (initial, x2, capped); the
delay resets once it stayed up `healthy_after` seconds. `crash_loop_exits` exits within
`crash_loop_window` seconds make a crash-loop: announced once per episode, retried at the
capped delay (so it recovers by itself once the cause is fixed), and left once it is
healthy again. A process the user stopped (held) is neither restarted nor counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from meteoflow.contracts import (
    SERVICE_CRASH_LOOP_ACTION,
    SERVICE_EXITED_ACTION,
    SERVICE_RECOVERED_ACTION,
    SupervisorEvent,
    describe_exit,
)
from meteoflow.settings import Settings

State = Literal["up", "backoff", "crash-loop", "held"]


@dataclass(frozen=True)
class Policy:
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    crash_loop_exits: int = 5
    crash_loop_window: float = 600.0
    healthy_after: float = 60.0

    @classmethod
    def from_settings(cls, s: Settings) -> "Policy":
        return cls(s.supervisor_backoff_initial_seconds, s.supervisor_backoff_max_seconds,
                   s.supervisor_crash_loop_exits, s.supervisor_crash_loop_window_seconds,
                   s.supervisor_healthy_after_seconds)

    def delay(self, failures: int) -> float:
        """Wait before the restart that follows the `failures`-th exit in a row."""
        return min(self.backoff_max, self.backoff_initial * 2 ** min(max(failures - 1, 0), 60))


@dataclass
class Supervised:
    """One process as the supervisor sees it."""

    name: str
    state: State = "up"
    since: float = 0.0  # when it entered `state`
    restarts: int = 0
    failures: int = 0  # exits since it last stayed up `healthy_after` seconds
    exit_times: list[float] = field(default_factory=list)  # within the crash-loop window
    last_exit_code: int | None = None
    last_error: str | None = None
    last_exit_at: float | None = None
    up_since: float | None = None  # None while it is down
    retry_at: float | None = None

    def enter(self, state: State, now: float) -> None:
        if state != self.state:
            self.state, self.since = state, now

    def event(self, action: str, **extra) -> SupervisorEvent:
        return SupervisorEvent(action=action, service=self.name, state=self.state, exit_code=self.last_exit_code,
                               last_error=self.last_error, restarts=self.restarts,
                               exits_in_window=len(self.exit_times), **extra)


class Supervision:
    """The policy applied to a set of processes; each method returns the events to log."""

    def __init__(self, policy: Policy, names: list[str], now: float):
        self.policy = policy
        self.processes = {name: Supervised(name, since=now) for name in names}

    def running(self, name: str, now: float) -> list[SupervisorEvent]:
        """The process is alive (started by us or by the user)."""
        p = self.processes[name]
        if p.up_since is None:
            p.up_since = now
        p.retry_at = None
        if p.state == "backoff":
            p.enter("up", now)
        if now - p.up_since < self.policy.healthy_after:
            return []
        p.failures = 0
        if p.state != "crash-loop":
            return []
        p.exit_times.clear()  # a fresh start: only new exits count towards the next crash-loop
        p.enter("up", now)
        return [p.event(SERVICE_RECOVERED_ACTION)]

    def exited(self, name: str, now: float, code: int | None, error: str | None) -> list[SupervisorEvent]:
        """The process is gone without the user asking."""
        p = self.processes[name]
        if p.state == "held":
            return []
        p.up_since = None
        p.failures += 1
        p.exit_times = [t for t in p.exit_times if now - t < self.policy.crash_loop_window] + [now]
        p.last_exit_code, p.last_error, p.last_exit_at = code, error, now
        entering = p.state != "crash-loop" and len(p.exit_times) >= self.policy.crash_loop_exits
        in_loop = entering or p.state == "crash-loop"
        delay = self.policy.backoff_max if in_loop else self.policy.delay(p.failures)
        p.retry_at = now + delay
        p.enter("crash-loop" if in_loop else "backoff", now)
        events = [p.event(SERVICE_EXITED_ACTION, retry_in_seconds=delay)]
        if entering:
            events.append(p.event(SERVICE_CRASH_LOOP_ACTION, retry_in_seconds=delay))
        return events

    def restart_due(self, name: str, now: float) -> bool:
        p = self.processes[name]
        return p.state in ("backoff", "crash-loop") and p.up_since is None and p.retry_at is not None \
            and now >= p.retry_at

    def restarting(self, name: str) -> None:
        p = self.processes[name]
        p.restarts += 1
        p.retry_at = None

    def hold(self, name: str, now: float) -> None:
        """The user stopped it (`./run.sh down NAME`): leave it down; its past exits are forgiven."""
        p = self.processes[name]
        p.enter("held", now)
        p.up_since = p.retry_at = None
        p.failures = 0
        p.exit_times.clear()

    def release(self, name: str, now: float) -> None:
        """No longer held: start it now unless the user already did."""
        p = self.processes[name]
        if p.state == "held":
            p.enter("backoff", now)
            p.retry_at = now


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} s" if value >= 1 else f"{value:.1f} s"


def describe(event: SupervisorEvent, policy: Policy) -> str:
    """The event in plain words, for the terminal of `./run.sh` and the log line's message."""
    name, exit_ = event.service, describe_exit(event.exit_code, event.last_error)
    if event.action == SERVICE_EXITED_ACTION:
        return (f"{name} exited ({exit_}); restart #{event.restarts + 1} in {_seconds(event.retry_in_seconds)} "
                f"(./run.sh logs {name})")
    if event.action == SERVICE_CRASH_LOOP_ACTION:
        return (f"CRASH-LOOP: {name} exited {event.exits_in_window} times within "
                f"{_seconds(policy.crash_loop_window)} ({exit_}); retrying every {_seconds(policy.backoff_max)} "
                f"until it stays up {_seconds(policy.healthy_after)}. See ./run.sh logs {name}")
    return f"{name} recovered: up for {_seconds(policy.healthy_after)} after a crash-loop"
