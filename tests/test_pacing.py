"""The node shells' pacing helpers (``emo_core.pacing``) on a manual clock."""
from __future__ import annotations

import pytest

from emo_core.clock import ManualClock
from emo_core.errors import InputError
from emo_core.pacing import RateGate, retry, wait_until


def test_rate_gate_lets_through_at_most_its_rate_in_message_time():
    gate = RateGate(10.0)
    passed = [t for t in (0.0, 0.05, 0.0999995, 0.1, 0.15, 0.21) if gate(t)]
    assert passed == [0.0, 0.0999995, 0.21]                  # 1 us of slack for float stamps
    assert gate(0.1) is True, "time going backwards (a replayed bag) passes and restarts the gate"
    assert not any(RateGate(0.0)(t) for t in (0.0, 1.0)), "0 Hz: never"


def test_retry_returns_once_an_attempt_succeeds_and_raises_the_last_error_at_the_deadline():
    clock = ManualClock()
    calls = []

    def flaky():
        calls.append(clock.now())
        if len(calls) < 3:
            raise InputError(f"attempt {len(calls)}: no such port")
        return "open"

    assert retry(flaky, 5.0, 0.25, monotonic=clock.now, sleep=clock.advance) == "open"
    assert calls == [0.0, 0.25, 0.5]

    def never():
        calls.append(clock.now())
        raise InputError(f"attempt at {clock.now():.2f}")

    start = clock.now()
    with pytest.raises(InputError, match="attempt at 1.50"):
        retry(never, 1.0, 0.25, monotonic=clock.now, sleep=clock.advance)
    assert clock.now() - start == pytest.approx(1.0)

    def broken():
        raise ValueError("a bug, not a missing port")

    with pytest.raises(ValueError):
        retry(broken, 5.0, 0.25, monotonic=clock.now, sleep=clock.advance)


def test_wait_until_polls_checks_and_gives_up():
    clock = ManualClock()
    assert wait_until(lambda: clock.now() >= 0.3, 1.0, 0.1, monotonic=clock.now, sleep=clock.advance)
    assert clock.now() == pytest.approx(0.3)
    checked = []
    assert not wait_until(lambda: False, 0.5, 0.1, check=lambda: checked.append(1), monotonic=clock.now,
                          sleep=clock.advance)
    assert len(checked) == 6

    def stop():
        raise InputError("stopped")

    with pytest.raises(InputError, match="stopped"):
        wait_until(lambda: False, 5.0, 0.1, check=stop, monotonic=clock.now, sleep=clock.advance)
