"""The bus link and the driver's health handling, on the Protocol 2.0 emulator: the retries and
refusals the rest of the suite does not reach (a servo that answers "CRC error", a status packet
that arrives short, a servo shut down by a hardware error at torque-on, a ServoError on reconnect),
the link state, and the lag recording on the driver's own clock.

Faults are injected at the byte level where the emulator can act on them (a corrupted instruction
gets a real CRC-error status back) and at the SDK's packet-handler boundary where it cannot (a short
status packet).
"""
from __future__ import annotations

import numpy as np
import pytest

from emo_core.clock import ManualClock
from emo_core.servo import BusEmulator, DriverConfig, ServoDriver, ServoError
from emo_core.servo.bus import ServoBus
from emo_core.servo.driver import Link
from emo_core.servo.identify import fit_first_order_lag, record_step
from emo_core.servo.models import HW_OVERLOAD, MODELS

DT = 0.01


@pytest.fixture()
def bus(emulator):
    b = ServoBus(emulator.port, retries=2, latency_timer_ms=40.0)
    b.open()
    yield b
    b.close()


def make_driver(table, port: str, clock: ManualClock, **overrides) -> ServoDriver:
    config = DriverConfig.from_mapping(table.driver, **{"latency_timer_ms": 40.0, **overrides})
    return ServoDriver(table, port, config, clock=clock, sleep=clock.advance)


def run(driver: ServoDriver, clock: ManualClock, seconds: float, command=None) -> object:
    state = None
    for _ in range(int(round(seconds / DT))):
        if command is not None:
            driver.command(command)
        clock.advance(DT)
        state = driver.step()
    return state


def test_a_servo_that_answers_crc_error_gets_the_instruction_again(bus, emulator, monkeypatch) -> None:
    """A corrupted instruction reaches the servo, which answers 'CRC error': sending it again is
    safe (nothing was executed), so the bus retries instead of raising."""
    port = bus._port
    real_write = port.writePort
    damaged = []

    def write_once_damaged(packet):
        if not damaged:
            damaged.append(bytes(packet))
            packet = list(packet[:-1]) + [packet[-1] ^ 0xFF]       # flip the CRC's high byte
        return real_write(packet)
    monkeypatch.setattr(port, "writePort", write_once_damaged)
    reg = MODELS["XL330-M288"].reg("Goal_Position")
    bus.write(5, reg, 1500)
    assert damaged and emulator.stats.crc_errors == 1, "the servo saw the damaged packet and said so"
    assert emulator.register(5, "Goal_Position") == 1500
    assert bus.stats.retries == 1 and bus.stats.servo_errors == 0


def test_crc_error_on_every_try_is_a_servo_error(emulator, monkeypatch) -> None:
    bus = ServoBus(emulator.port, retries=1, latency_timer_ms=40.0)
    bus.open()
    try:
        port = bus._port
        real_write = port.writePort
        monkeypatch.setattr(port, "writePort", lambda packet: real_write(list(packet[:-1]) + [packet[-1] ^ 0xFF]))
        with pytest.raises(ServoError, match=r"CRC") as info:
            bus.write(5, MODELS["XL330-M288"].reg("Goal_Position"), 1500)
        assert info.value.tries == 2 and info.value.ids == (5,)
        assert emulator.stats.crc_errors == 2
    finally:
        bus.close()


def test_a_short_status_packet_in_a_sync_read_is_corrupt_and_re_read(table, bus, emulator, monkeypatch) -> None:
    """A status packet with fewer parameter bytes than asked for (and no error to explain it) is a
    damaged answer: it is counted corrupt and read again, never handed on as data."""
    real_read_rx = bus._ph.readRx
    shortened = []

    def read_rx(port, dxl_id, length):
        data, comm, err = real_read_rx(port, dxl_id, length)
        if dxl_id == 9 and not shortened:
            shortened.append(dxl_id)
            data = data[:-1]
        return data, comm, err
    monkeypatch.setattr(bus._ph, "readRx", read_rx)
    reg = MODELS["XL330-M288"].reg("Present_Position")
    ids = list(table.ids)
    data = bus.sync_read(reg.address, reg.size, ids, reg.name)
    assert shortened == [9]
    assert sorted(data) == sorted(ids) and all(len(d) == reg.size for d in data.values())
    positions = emulator.registers("Present_Position")
    assert {i: reg.decode(d) for i, d in data.items()} == {i: positions[i] for i in ids}
    assert bus.stats.corrupt == 1 and bus.stats.retries == 1


def test_torque_on_leaves_a_servo_shut_down_by_a_hardware_error_off(table, emulator, clock) -> None:
    """An overload shuts a servo down; a later activate() turns the others on and leaves that one
    off (the servo would refuse, and only a reboot clears the error), without raising."""
    drv = make_driver(table, emulator.port, clock)
    drv.open()
    drv.activate()
    try:
        run(drv, clock, 0.1, command=np.full(11, 0.5))
        emulator.inject_hardware_error(26, HW_OVERLOAD)
        state = run(drv, clock, 0.05, command=np.full(11, 0.5))
        assert state.hardware_errors() == {"jaw": ["overload"]}
        drv.deactivate(timeout_s=1.0)
        assert set(emulator.registers("Torque_Enable").values()) == {0}
        drv.activate()
        torque = emulator.registers("Torque_Enable")
        assert torque[26] == 0 and all(v == 1 for i, v in torque.items() if i != 26)
        state = drv.state()
        assert not state.torque[table.index("jaw")] and not state.torque_on, "torque_on says what holds"
        assert "jaw (id 26) overload" in run(drv, clock, DT).fault
    finally:
        drv.shutdown()


def test_link_state_follows_the_port(table, emulator, clock) -> None:
    drv = make_driver(table, emulator.port, clock, reconnect_interval_s=0.1)
    assert drv.link is Link.CLOSED
    drv.open()
    drv.activate()
    try:
        assert drv.link is Link.CONNECTED
        emulator.unplug()
        state = run(drv, clock, 0.05, command=np.full(11, 0.5))
        assert drv.link is Link.LOST and not state.connected and "reconnecting" in state.fault
        emulator.replug()
        state = run(drv, clock, 0.5, command=np.full(11, 0.5))
        assert drv.link is Link.CONNECTED and state.connected and state.torque_on
    finally:
        drv.shutdown()
    assert drv.link is Link.CLOSED


def test_a_servo_error_on_reconnect_stays_a_servo_error(table, emulator, clock, monkeypatch) -> None:
    """A servo that answers with an error while the driver re-enables torque after a reconnect is
    reported as that servo's error (its id and error), not as a transport problem."""
    drv = make_driver(table, emulator.port, clock, reconnect_interval_s=0.1, max_failed_cycles=5)
    drv.open()
    drv.activate()
    try:
        emulator.unplug()
        run(drv, clock, 0.05)
        assert drv.link is Link.LOST

        def refuse(on: bool) -> None:
            raise ServoError("write Torque_Enable: id 26: result fail", operation="write",
                             register="Torque_Enable", errors={26: 1})
        monkeypatch.setattr(drv, "_torque", refuse)
        seen: list[Exception] = []
        handle = drv._on_transport_error
        monkeypatch.setattr(drv, "_on_transport_error", lambda exc, now: (seen.append(exc), handle(exc, now)))
        emulator.replug()
        for _ in range(20):
            clock.advance(DT)
            state = drv.step()
            if seen:
                break
        assert isinstance(seen[0], ServoError) and seen[0].errors == {26: 1}
        assert state.fault == "write Torque_Enable: id 26: result fail"
        assert drv.link is Link.CONNECTED, "one servo's error is not a lost port"
    finally:
        monkeypatch.undo()
        drv.shutdown()


def test_record_step_runs_on_the_drivers_clock(table, clock, tmp_path) -> None:
    """The lag recording paces itself on the driver's clock: with a manual clock advanced by the
    injected sleep it records exactly its cycles and recovers the emulated plant's time constant."""
    tau = table.emulator["response_time_s"]
    with BusEmulator.from_table(table, link=tmp_path / "bus", clock=clock, response_time_s=tau) as emu:
        drv = make_driver(table, emu.port, clock, watchdog_timeout_s=0.0, servo_lag_s=0.0)
        drv.open()
        drv.activate()
        try:
            start = clock.now()
            rec = record_step(drv, table.index("jaw"), 0.1, 0.5, period_s=DT, sleep=clock.advance)
        finally:
            drv.shutdown()
    assert 2 * 50 <= len(rec.times) <= 2 * 51          # 0.5 s of 10 ms cycles per step (float ends)
    assert rec.times[0] == start and np.allclose(np.diff(rec.times), DT)
    assert rec.times[-1] - rec.times[0] == pytest.approx(1.0, abs=DT + 1e-9)
    fit = fit_first_order_lag(rec.times, rec.goal, rec.present)
    assert fit.tau_s == pytest.approx(tau, abs=0.03)
