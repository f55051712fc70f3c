"""The supervision policy of ./run.sh, driven by a hand-held clock (`now` is just a number)."""

import pytest

from meteoflow.contracts import (
    SERVICE_CRASH_LOOP_ACTION,
    SERVICE_EXITED_ACTION,
    SERVICE_RECOVERED_ACTION,
    describe_exit,
)
from meteoflow.settings import load_settings
from stack.policy import Policy, Supervision, describe

POLICY = Policy(backoff_initial=1, backoff_max=8, crash_loop_exits=5, crash_loop_window=600, healthy_after=60)


def supervised(policy: Policy = POLICY) -> Supervision:
    s = Supervision(policy, ["streaming"], now=0.0)
    assert s.running("streaming", 0.0) == []
    return s


def crash_and_restart(s: Supervision, now: float, up_for: float = 1.0) -> tuple[list, float]:
    """The process exits at `now`; restarted as soon as due, it stays up `up_for` s. Returns
    (events of the exit, the time it is up again)."""
    events = s.exited("streaming", now, 1, "ValueError: bad record")
    delay = events[0].retry_in_seconds
    assert not s.restart_due("streaming", now + delay - 0.01)
    assert s.restart_due("streaming", now + delay)
    s.restarting("streaming")
    s.running("streaming", now + delay)
    return events, now + delay + up_for


def test_the_restart_delay_doubles_up_to_the_cap():
    s = supervised(Policy(backoff_initial=1, backoff_max=8, crash_loop_exits=100, crash_loop_window=600))
    now, delays = 10.0, []
    for _ in range(6):
        events, now = crash_and_restart(s, now)
        delays.append(events[0].retry_in_seconds)
    assert delays == [1, 2, 4, 8, 8, 8]
    assert s.processes["streaming"].restarts == 6 and s.processes["streaming"].state == "up"


def test_the_delay_resets_once_the_process_stayed_up_long_enough():
    s = supervised(Policy(backoff_initial=1, backoff_max=300, crash_loop_exits=100, healthy_after=60))
    now = 10.0
    for _ in range(3):
        _, now = crash_and_restart(s, now)  # delays 1, 2, 4
    up_since = now - 1
    s.running("streaming", up_since + 59)  # not long enough
    assert s.exited("streaming", up_since + 59, 1, None)[0].retry_in_seconds == 8
    s.restarting("streaming")
    s.running("streaming", up_since + 67)
    s.running("streaming", up_since + 67 + 60)  # healthy: forgiven
    assert s.exited("streaming", up_since + 200, 1, None)[0].retry_in_seconds == 1


def test_five_exits_within_ten_minutes_are_a_crash_loop_announced_once():
    s = supervised()
    now, actions = 10.0, []
    for _ in range(4):
        events, now = crash_and_restart(s, now)
        actions.append([e.action for e in events])
    assert actions == [[SERVICE_EXITED_ACTION]] * 4 and s.processes["streaming"].state == "up"

    events = s.exited("streaming", now, 3, "ValueError: bad record 42")
    assert [e.action for e in events] == [SERVICE_EXITED_ACTION, SERVICE_CRASH_LOOP_ACTION]
    loop = events[1]
    assert (loop.service, loop.state, loop.exit_code, loop.last_error, loop.exits_in_window, loop.restarts) == (
        "streaming", "crash-loop", 3, "ValueError: bad record 42", 5, 4)
    assert loop.retry_in_seconds == POLICY.backoff_max  # keeps retrying, at the capped delay
    assert "CRASH-LOOP: streaming exited 5 times" in describe(loop, POLICY)
    assert "exit 3: ValueError: bad record 42" in describe(loop, POLICY)

    # Later exits of the same episode: logged, never announced again.
    for _ in range(3):
        s.restarting("streaming")
        s.running("streaming", now + 8)
        now += 9
        events = s.exited("streaming", now, 3, "ValueError: bad record 42")
        assert [(e.action, e.state, e.retry_in_seconds) for e in events] == [(SERVICE_EXITED_ACTION, "crash-loop", 8)]


def test_exits_spread_over_more_than_the_window_are_no_crash_loop():
    s = supervised(Policy(backoff_initial=1, backoff_max=8, crash_loop_exits=5, crash_loop_window=600,
                          healthy_after=1000))
    for now in (0.0, 150.0, 300.0, 450.0, 600.0):  # the first one has left the window by the fifth
        events = s.exited("streaming", now, 1, None)
        s.restarting("streaming")
        s.running("streaming", now + 8)
        assert SERVICE_CRASH_LOOP_ACTION not in [e.action for e in events]
    assert s.processes["streaming"].state == "up"


def test_a_crash_loop_ends_once_the_process_stays_up_and_starts_afresh():
    s = supervised()
    now = 10.0
    for _ in range(5):
        _, now = crash_and_restart(s, now)
    assert s.processes["streaming"].state == "crash-loop"  # restarted, but not healthy yet
    up_since = now - 1
    assert s.running("streaming", up_since + 59) == []
    [recovered] = s.running("streaming", up_since + 60)
    assert (recovered.action, recovered.state, recovered.service) == (SERVICE_RECOVERED_ACTION, "up", "streaming")
    assert s.running("streaming", up_since + 120) == []  # said once
    # A new exit starts from the beginning: first delay, no crash-loop.
    events = s.exited("streaming", up_since + 130, 1, None)
    assert [e.action for e in events] == [SERVICE_EXITED_ACTION] and events[0].retry_in_seconds == 1


def test_a_process_held_by_the_user_is_neither_restarted_nor_counted():
    s = supervised()
    _, now = crash_and_restart(s, 10.0)
    s.hold("streaming", now)
    for later in range(10):
        assert s.exited("streaming", now + later, -15, None) == []
        assert not s.restart_due("streaming", now + later + 1000)
    p = s.processes["streaming"]
    assert (p.state, p.restarts, p.last_exit_code) == ("held", 1, 1)
    s.release("streaming", now + 20)  # `./run.sh up streaming` removed the mark
    assert s.restart_due("streaming", now + 20)
    s.restarting("streaming")
    s.running("streaming", now + 20)
    assert s.exited("streaming", now + 30, 1, None)[0].retry_in_seconds == 1  # earlier exits forgiven


def test_a_process_started_by_the_user_while_waiting_is_up():
    s = supervised()
    s.exited("streaming", 10.0, 1, None)
    s.running("streaming", 10.5)  # `./run.sh up streaming` beat the supervisor to it
    assert s.processes["streaming"].state == "up" and not s.restart_due("streaming", 100.0)


def test_policy_from_settings_and_a_huge_failure_count():
    policy = Policy.from_settings(load_settings(supervisor_backoff_initial_seconds=2, supervisor_crash_loop_exits=7))
    assert (policy.backoff_initial, policy.backoff_max, policy.crash_loop_exits, policy.crash_loop_window,
            policy.healthy_after) == (2, 300, 7, 600, 60)
    assert policy.delay(1) == 2 and policy.delay(10_000) == 300


@pytest.mark.parametrize("code, error, text", [
    (3, "ValueError: x", "exit 3: ValueError: x"),
    (0, None, "exit 0"),
    (-9, None, "signal SIGKILL"),
    (-200, "", "signal 200"),
    (None, "boom", "exited: boom"),
])
def test_exits_in_words(code, error, text):
    assert describe_exit(code, error) == text
