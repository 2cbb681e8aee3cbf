"""``emo servo ...`` against the emulator: emulate (a real subprocess), ping, set, home, monitor."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from emo_core.cli import main
from emo_core.servo import BusEmulator
from emo_core.servo.models import HW_OVERLOAD


@pytest.fixture()
def emulator(table, tmp_path):
    with BusEmulator.from_table(table, link=tmp_path / "bus") as emu:
        yield emu


def test_emulate_runs_until_stopped(tmp_path, capsys) -> None:
    link = tmp_path / "servo_bus"
    proc = subprocess.Popen([sys.executable, "-m", "emo_core.cli", "servo", "emulate", "--link", str(link)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not link.is_symlink():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "emulator did not create its link"
            time.sleep(0.05)
        assert os.readlink(link).startswith("/dev/pts/")
        assert main(["servo", "ping", "--port", str(link)]) == 0
        assert "26/26 servos answer" in capsys.readouterr().out
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "emulating 26 servos" in out and "emulator stopped" in out
    assert not link.exists() and not link.is_symlink()


def test_emulate_does_not_take_over_a_running_emulators_link(table, emulator, tmp_path, capsys) -> None:
    assert main(["servo", "emulate", "--link", str(emulator.link)]) == 2
    err = capsys.readouterr().err
    assert "already leads to the live pty" in err and err.count("\n") == 1
    assert os.readlink(emulator.link) == emulator.device and emulator.running   # still the first one's


def test_emulate_refuses_a_regular_file(tmp_path, capsys) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    assert main(["servo", "emulate", "--link", str(path)]) == 2
    assert "is not a symlink" in capsys.readouterr().err
    assert path.read_text() == "keep me"


def test_set_moves_and_keeps_holding(table, emulator, capsys) -> None:
    assert main(["servo", "set", "--port", emulator.port, "jaw_open=0.5", "brow_inner_left=0.9"]) == 0
    out = capsys.readouterr().out
    assert "jaw" in out and "brow_inner_left" in out and "brow_inner_right" not in out
    present = emulator.registers("Present_Position")
    jaw, brow = table.by_id(26), table.servos[table.index("brow_inner_left")]
    assert abs(present[26] - jaw.to_ticks(0.5)) <= 8
    assert abs(present[brow.id] - brow.to_ticks(0.9)) <= 8
    assert set(emulator.registers("Torque_Enable").values()) == {1}      # still holding
    # Servos not named stay where they were.
    right = table.servos[table.index("brow_inner_right")]
    assert present[right.id] == right.home


@pytest.mark.parametrize("assignment, message", [
    ("jaw_open=nan", "jaw_open=nan is not finite"),
    ("jaw_open=1.5", r"within [0, 1]: jaw_open=1.5"),
    ("nose=0.3", "unknown command or servo 'nose'"),
    ("jaw_open", "expected name=value"),
    ("jaw_open=wide", "'wide' is not a number"),
])
def test_set_rejects_bad_values_before_touching_the_bus(emulator, capsys, assignment, message) -> None:
    assert main(["servo", "set", "--port", emulator.port, assignment]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emo: error: ") and message in err and err.count("\n") == 1
    assert emulator.stats.instructions == 0


def test_home_eases_back_and_releases(table, emulator, capsys) -> None:
    assert main(["servo", "set", "--port", emulator.port, "jaw_open=0.4"]) == 0
    assert main(["servo", "home", "--port", emulator.port]) == 0
    assert "torque released" in capsys.readouterr().out
    present = emulator.registers("Present_Position")
    assert max(abs(present[s.id] - s.home) for s in table.servos) <= 8
    assert set(emulator.registers("Torque_Enable").values()) == {0}


def test_monitor_prints_a_table(table, emulator, capsys) -> None:
    emulator.inject_hardware_error(26, HW_OVERLOAD)
    assert main(["servo", "monitor", "--port", emulator.port, "--count", "2", "--interval", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("ticks") == 2                       # two refreshes of the header
    jaw_rows = [line for line in out.splitlines() if " jaw " in line]
    assert len(jaw_rows) == 2 and all("overload" in row for row in jaw_rows)
    assert str(table.by_id(1).home) in out
    assert emulator.stats.sync_writes == 0               # the monitor only reads


def test_ping_reports_missing_servos(emulator, capsys) -> None:
    emulator.power([3], on=False)
    assert main(["servo", "ping", "--port", emulator.port]) == 1
    out = capsys.readouterr().out
    assert "neck_yaw" in next(line for line in out.splitlines() if "missing" in line)
    assert "25/26 servos answer" in out


def test_missing_port_is_a_one_line_error(tmp_path, capsys) -> None:
    assert main(["servo", "monitor", "--port", str(tmp_path / "ttyUSB9"), "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emo: error: cannot open servo port") and err.count("\n") == 1


def test_lag_recovers_the_emulated_plant(table, tmp_path, capsys) -> None:
    """`emo servo lag` steps one servo through the real driver and fits the first-order lag between
    goal and present: it finds the emulator's time constant, not the configured one."""
    import json

    with BusEmulator.from_table(table, link=tmp_path / "lagbus", response_time_s=0.08):
        assert main(["servo", "lag", "--port", str(tmp_path / "lagbus"), "--servo", "jaw", "--repeats", "1",
                     "--seconds", "0.8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["servo"] == "jaw" and out["tau_s"] == pytest.approx(0.08, abs=0.01)
    assert out["moved_ticks"][0] >= 50 and out["rmse_ticks"][0] < 2.0
    assert out["servo_lag_s_configured"] == table.driver["servo_lag_s"]


def test_lag_refuses_an_unknown_servo(emulator, capsys) -> None:
    assert main(["servo", "lag", "--port", str(emulator.link), "--servo", "nose"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emo: error: --servo 'nose': not a servo") and "\n" not in err
