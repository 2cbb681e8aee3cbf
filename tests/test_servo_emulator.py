"""The bus emulator at the wire level: raw packets through the pty, and through the real SDK."""
from __future__ import annotations

import os
import select
import time

import pytest
import serial
from dynamixel_sdk import GroupSyncRead, PacketHandler, PortHandler
from dynamixel_sdk.robotis_def import COMM_SUCCESS

from emo_core.clock import ManualClock
from emo_core.servo import BusEmulator
from emo_core.servo.bus import EmoPortHandler
from emo_core.servo.models import ERR_CRC, ERR_INSTRUCTION, HW_OVERLOAD, STATUS_ALERT
from emo_core.servo.protocol import (INST_PING, INST_READ, INST_SYNC_WRITE, PacketParser, byte_time_s,
                                     instruction_packet)
from emo_core.benchmarks.servo import bus_limit_hz


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock(5.0)


@pytest.fixture()
def emulator(clock, tmp_path):
    servos = [(1, "XL330-M288", 2048), (2, "XL330-M288", 1000), (3, "XM430-W350", 3000)]
    with BusEmulator(servos, link=tmp_path / "bus", clock=clock) as emu:
        yield emu


def sdk_port(path: str) -> PortHandler:
    """The SDK's PortHandler (our subclass only swaps its 16 ms latency-timer constant for 40 ms): on
    a loaded CI machine the emulator's pty thread can answer later than the SDK's default timeout,
    and a timed-out exchange reports error 0, failing the test for the wrong reason."""
    return EmoPortHandler(path, latency_timer_ms=40.0)


def exchange(port: serial.Serial, packet: bytes, expect: int, timeout: float = 1.0) -> list:
    """Send raw bytes, collect ``expect`` status packets (or wait out ``timeout`` if 0)."""
    port.reset_input_buffer()
    port.write(packet)
    parser, packets = PacketParser(), []
    deadline = time.monotonic() + (timeout if expect else 0.1)
    while time.monotonic() < deadline and (len(packets) < expect or not expect):
        ready, _, _ = select.select([port.fd], [], [], 0.01)
        if ready:
            packets += parser.feed(os.read(port.fd, 1024))
    return packets


@pytest.fixture()
def wire(emulator):
    port = serial.Serial(emulator.port, 1_000_000, timeout=0)
    yield port
    port.close()


def test_ping_read_and_broadcast_ping(wire) -> None:
    (status,) = exchange(wire, instruction_packet(3, INST_PING), 1)
    assert status.crc_ok and status.dxl_id == 3 and status.error == 0
    assert int.from_bytes(status.params[1:3], "little") == 1020           # XM430-W350
    (status,) = exchange(wire, instruction_packet(2, INST_READ, bytes([132, 0, 4, 0])), 1)
    assert int.from_bytes(status.params[1:5], "little") == 1000            # Present_Position
    statuses = exchange(wire, instruction_packet(0xFE, INST_PING), 3)
    assert [s.dxl_id for s in statuses] == [1, 2, 3]
    assert exchange(wire, instruction_packet(9, INST_PING), 0) == []       # no such servo: silence


def test_damaged_and_unknown_instructions_get_error_status(wire, emulator) -> None:
    packet = bytearray(instruction_packet(1, INST_READ, bytes([132, 0, 4, 0])))
    packet[-1] ^= 0xFF
    (status,) = exchange(wire, bytes(packet), 1)
    assert status.error == ERR_CRC and emulator.stats.crc_errors == 1
    (status,) = exchange(wire, instruction_packet(1, 0x77), 1)
    assert status.error == ERR_INSTRUCTION


def test_sync_write_applies_valid_values_and_drops_refused_ones(wire, emulator, clock) -> None:
    emulator.servo(2).set("Max_Position_Limit", 2000)
    body = bytes([116, 0, 4, 0]) + bytes([1]) + (2100).to_bytes(4, "little") + bytes([2]) + (2500).to_bytes(4, "little")
    assert exchange(wire, instruction_packet(0xFE, INST_SYNC_WRITE, body), 0) == []
    time.sleep(0.05)
    assert emulator.register(1, "Goal_Position") == 2100
    assert emulator.register(2, "Goal_Position") == 1000                  # beyond its limit: ignored
    assert emulator.servo(2).rejected_writes == 1


def test_motion_follows_the_goal_at_profile_velocity(emulator, clock) -> None:
    servo = emulator.servo(1)
    servo.set("Torque_Enable", 1)
    servo.set("Profile_Velocity", 100)                  # 100 x 0.229 rpm = 1563 ticks/s
    servo.set("Goal_Position", 3048)
    clock.advance(0.2)
    moved = emulator.register(1, "Present_Position") - 2048
    assert moved == pytest.approx(100 * 0.229 / 60 * 4096 * 0.2, abs=1)
    assert emulator.register(1, "Moving") == 1 and emulator.register(1, "Present_Velocity") == 100
    clock.advance(1.0)
    assert emulator.register(1, "Present_Position") == 3048 and emulator.register(1, "Moving") == 0
    servo.set("Torque_Enable", 0)
    servo.set("Goal_Position", 2048)
    clock.advance(1.0)
    assert emulator.register(1, "Present_Position") == 3048               # no torque, no motion


def test_hardware_error_sets_the_alert_bit_and_reboot_clears_it(emulator) -> None:
    port = sdk_port(emulator.port)
    assert port.openPort()
    ph = PacketHandler(2.0)
    try:
        assert ph.write1ByteTxRx(port, 3, 64, 1) == (COMM_SUCCESS, 0)
        emulator.inject_hardware_error(3, HW_OVERLOAD)
        value, comm, error = ph.read1ByteTxRx(port, 3, 70)
        assert comm == COMM_SUCCESS and value == HW_OVERLOAD and error & STATUS_ALERT
        assert emulator.register(3, "Torque_Enable") == 0                 # Shutdown: torque released
        comm, error = ph.write1ByteTxRx(port, 3, 64, 1)
        assert comm == COMM_SUCCESS and error & 0x7F == 1       # result fail until rebooted
        assert ph.reboot(port, 3)[0] == COMM_SUCCESS
        value, comm, error = ph.read1ByteTxRx(port, 3, 70)
        assert (value, error) == (0, 0)
    finally:
        port.closePort()


def test_sdk_group_sync_read(emulator) -> None:
    port = sdk_port(emulator.port)
    assert port.openPort()
    try:
        group = GroupSyncRead(port, PacketHandler(2.0), 132, 4)
        for dxl_id in (1, 2, 3):
            group.addParam(dxl_id)
        assert group.txRxPacket() == COMM_SUCCESS
        assert [group.getData(i, 132, 4) for i in (1, 2, 3)] == [2048, 1000, 3000]
    finally:
        port.closePort()


def test_bus_timing_is_never_faster_than_the_wire(tmp_path) -> None:
    """With timing on, 3 status packets of 15 bytes after a 17-byte Sync Read and the factory
    Return_Delay_Time (3 x 500 us) cannot arrive sooner than the wire allows (a lower bound only)."""
    servos = [(i, "XL330-M288", 2048) for i in (1, 2, 3)]
    with BusEmulator(servos, link=tmp_path / "bus", timing=True, baudrate=57600) as emu:
        port = sdk_port(emu.port)
        port.setBaudRate(57600)
        try:
            group = GroupSyncRead(port, PacketHandler(2.0), 132, 4)
            for dxl_id in (1, 2, 3):
                group.addParam(dxl_id)
            t0 = time.perf_counter()
            assert group.txRxPacket() == COMM_SUCCESS
            elapsed = time.perf_counter() - t0
        finally:
            port.closePort()
    wire_s = (17 + 3 * 15) * byte_time_s(57600) + 3 * 500e-6
    assert elapsed >= wire_s


def test_unplug_and_replug_keep_the_link(emulator) -> None:
    link = emulator.port
    first = os.readlink(link)
    port = serial.Serial(link, 1_000_000, timeout=0)
    emulator.unplug()
    assert not os.path.lexists(link)
    with pytest.raises(serial.SerialException):
        port.write(b"\xff" * 10)
        port.read(10)
    port.close()
    emulator.replug()
    assert os.path.islink(link) and os.readlink(link).startswith("/dev/pts/")
    port = serial.Serial(link, 1_000_000, timeout=0)
    try:
        assert len(exchange(port, instruction_packet(1, INST_PING), 1)) == 1
    finally:
        port.close()
    assert first.startswith("/dev/pts/")


def test_bus_limit_arithmetic() -> None:
    hz, cycle_bytes = bus_limit_hz(26, 1_000_000)
    assert cycle_bytes == 144 + 40 + 26 * 21 == 730
    assert hz == pytest.approx(1 / 7.30e-3)
