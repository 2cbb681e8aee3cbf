"""Ctrl-C, SIGTERM and SIGHUP stop every servo-holding program the same safe way.

Real signals go to real subprocesses (``emo servo lag``, an interrupted ``emo servo set``, a plain
``with ServoDriver(...)`` program) driving the Protocol 2.0 emulator on a pty in this process;
Torque_Enable is read back from the emulated servos.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emo_core.servo import BusEmulator, ServoTable

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.fixture()
def emulator(table, tmp_path):
    with BusEmulator.from_table(table, link=tmp_path / "bus") as emu:
        yield emu


def _start(argv: list[str]) -> subprocess.Popen:
    # A fresh session: the child is not in the test runner's process group, so only it gets the signal,
    # and SIGINT is not ignored as it would be for a background job.
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended before {what}: rc {proc.returncode}\n{out}\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _signal_and_time_release(proc: subprocess.Popen, emulator: BusEmulator, sig: int) -> tuple[float, int, str, str]:
    """Send ``sig`` once every servo is torqued; return seconds until all are released, how far from
    home the face was when the signal went, and the output."""
    _wait_for(lambda: set(emulator.registers("Torque_Enable").values()) == {1}, proc, "torque on")
    time.sleep(0.3)                                   # mid-move, not at the first cycle
    assert set(emulator.registers("Torque_Enable").values()) == {1}
    away = _away_from_home(emulator)
    sent = time.monotonic()
    proc.send_signal(sig)
    _wait_for(lambda: set(emulator.registers("Torque_Enable").values()) == {0}, proc, "torque off", 10.0)
    released_s = time.monotonic() - sent
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return released_s, away, out, err


def _assert_stopped_cleanly(proc, err: str, sig: int) -> None:
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    name = signal.Signals(sig).name
    expected = "emo: interrupted" if sig == signal.SIGINT else f"emo: stopped by {name}"
    assert err.strip().splitlines()[-1] == expected


def _away_from_home(emulator: BusEmulator) -> int:
    """The largest distance of any servo from its home position (ticks)."""
    present = emulator.registers("Present_Position")
    return max(abs(present[s.id] - s.home) for s in ServoTable.load().servos)


def _at_home(emulator: BusEmulator, table: ServoTable, tolerance: int = 8) -> bool:
    return _away_from_home(emulator) <= tolerance


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_lag_stops_safely_on_every_signal(table, emulator, sig) -> None:
    """`emo servo lag` mid-recording: eases home, releases all 26 servos within 1 s, exits 128+sig."""
    proc = _start([sys.executable, "-m", "emo_core.cli", "servo", "lag", "--port", emulator.port,
                   "--servo", "jaw", "--seconds", "10", "--repeats", "5"])
    released_s, _, _, err = _signal_and_time_release(proc, emulator, sig)
    _assert_stopped_cleanly(proc, err, sig)
    assert released_s < 1.0, f"torque released {released_s:.2f} s after {signal.Signals(sig).name}"
    assert _at_home(emulator, table)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_set_interrupted_mid_move_homes_and_releases(table, tmp_path, sig) -> None:
    """`emo servo set` keeps holding when it finishes, but a signal mid-move is a stop: home, torque off.
    A slow plant (1 s time constant) keeps the move going long enough to interrupt it."""
    with BusEmulator.from_table(table, link=tmp_path / "slowbus", response_time_s=1.0) as emulator:
        proc = _start([sys.executable, "-m", "emo_core.cli", "servo", "set", "--port", emulator.port,
                       "--timeout", "30", "jaw_open=1", "brow_inner_left=1"])
        _, _, out, err = _signal_and_time_release(proc, emulator, sig)
        _assert_stopped_cleanly(proc, err, sig)
        assert out == ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_with_servo_driver_program_releases_on_signal(table, emulator, tmp_path, sig) -> None:
    """Any program in ``with ServoDriver(...)``, CLI or not: SIGTERM/SIGHUP release the servos."""
    script = tmp_path / "wave.py"
    script.write_text(textwrap.dedent(f"""
        import math, time
        from emo_core.servo import ServoDriver, ServoTable
        table = ServoTable.load()
        with ServoDriver(table, {emulator.port!r}) as driver:
            driver.activate()
            t0 = time.monotonic()
            while True:
                t = time.monotonic() - t0
                driver.command({{"jaw_open": 0.5 + 0.4 * math.sin(3 * t)}})
                driver.step()
                time.sleep(0.01)
        """))
    proc = _start([sys.executable, str(script)])
    released_s, away, _, err = _signal_and_time_release(proc, emulator, sig)
    assert released_s < 1.0
    # Uncaught, the stop is a KeyboardInterrupt: Python ends the process the way a Ctrl-C would.
    assert "Stopped: stopped by " + signal.Signals(sig).name in err
    # Released within stop_timeout_s of homing at full speed: much nearer home, if not all the way.
    assert _away_from_home(emulator) < away / 2


def test_a_second_signal_while_homing_skips_to_torque_off(table, tmp_path) -> None:
    """Homing is velocity-limited; a second SIGTERM during it releases torque at once (still exit 143)."""
    with BusEmulator.from_table(table, link=tmp_path / "slowbus", response_time_s=2.0) as emulator:
        proc = _start([sys.executable, "-m", "emo_core.cli", "servo", "set", "--port", emulator.port,
                       "--timeout", "30", "jaw_open=1"])
        _wait_for(lambda: set(emulator.registers("Torque_Enable").values()) == {1}, proc, "torque on")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)                                # now homing (the slow plant takes seconds)
        assert set(emulator.registers("Torque_Enable").values()) == {1}
        proc.send_signal(signal.SIGTERM)
        _wait_for(lambda: set(emulator.registers("Torque_Enable").values()) == {0}, proc, "torque off", 5.0)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143 and "Traceback" not in err
    assert "interrupted while homing: releasing torque now" in err


def test_nohup_keeps_sighup_ignored() -> None:
    """A program started with SIGHUP ignored (nohup) keeps ignoring it: the signal is not taken over."""
    from emo_core.signals import stop_on_signals

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_emulator_stops_on_sighup(tmp_path: Path) -> None:
    link = tmp_path / "servo_bus"
    proc = _start([sys.executable, "-m", "emo_core.cli", "servo", "emulate", "--link", str(link)])
    _wait_for(link.is_symlink, proc, "the emulator link")
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "emulator stopped" in out and not link.is_symlink()


def test_hardware_babbling_stops_safely_and_keeps_its_data(table, emulator, tmp_path) -> None:
    """`emo babble` in its hardware form (servo bus = the emulator, camera = a video file): SIGTERM
    mid-run homes and releases within 1 s, exits 143, and the dataset opens with what was flushed."""
    from emo_core.datasets.babbling import BabblingDataset
    from emo_core.resources import data_path

    out = tmp_path / "babble"
    proc = _start([sys.executable, "-m", "emo_core.cli", "babble", "--port", emulator.port, "--camera",
                   str(data_path("demo_clip.mp4")), "--samples", "1000", "--out", str(out), "--quiet"])
    released_s, _, _, err = _signal_and_time_release(proc, emulator, signal.SIGTERM)
    _assert_stopped_cleanly(proc, err, signal.SIGTERM)
    assert released_s < 1.0
    dataset = BabblingDataset.open(out)                      # opens: whole chunks, consistent manifest
    assert len(dataset.arrays().index) == dataset.n_samples


def test_demo_stopped_by_sigterm_leaves_the_previous_outputs(tmp_path) -> None:
    """`emo demo` replaces its three outputs as a set: stopped mid-run, the old set stays whole and
    nothing staged is left behind."""
    out = tmp_path / "demo"
    out.mkdir()
    old = {name: f"previous {name}" for name in ("side_by_side.mp4", "timeline.png", "report.json")}
    for name, text in old.items():
        (out / name).write_text(text)
    proc = _start([sys.executable, "-m", "emo_core.cli", "demo", "--out", str(out), "--synthetic", "0"])
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".") for p in out.iterdir()):      # the new video is being written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "emo: stopped by SIGTERM"
    assert {p.name: p.read_text() for p in out.iterdir()} == old
