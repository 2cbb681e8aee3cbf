"""A stateful Dynamixel Protocol 2.0 servo bus on a pseudo-terminal.

The driver (through the real ``dynamixel_sdk`` and pyserial) opens the pty's slave side exactly as
it would open ``/dev/ttyUSB0``; a thread here reads the master side, parses instruction packets and
answers with status packets, playing every servo of the bus:

* instructions: ping (also broadcast), read, write, sync read, sync write, reboot; anything else
  gets an "instruction error" status; a damaged instruction gets a "CRC error" status;
* a control table per servo built from :mod:`emo_core.servo.models` (access rights, EEPROM locked
  while torque is on, goal position checked against the position limits);
* motion, only while torque is on: the servo responds to its goal as a first-order lag with time
  constant ``response_time_s`` (position loop under load + the silicone skin it drags: the plant
  model of a face servo, see docs/servo.md; 0 = ideal), and the horn follows that response no
  faster than Profile_Velocity (or Velocity_Limit), capped at the model's no-load speed; present
  velocity and current follow;
* optional bus timing: answers leave when a real 1 Mbps (or any baud) half-duplex bus would deliver
  them -- 10 bits per byte for the instruction and each status packet, plus Return_Delay_Time;
* fault injection: dropped or corrupted status packets, unplugging the adapter, powered-off
  servos, hardware errors (overload, overheating, ...) with the Shutdown behaviour of X-series.

Motion runs on an injectable clock (a ManualClock makes tests deterministic); bus timing always
uses the real monotonic clock, because it is about when bytes reach the driver.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import collections
import functools
import random
import select
import struct
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import Clock, MonotonicClock
from ..errors import ConfigError, InputError
from .models import (EEPROM_END, ERR_ACCESS, ERR_CRC, ERR_DATA_LENGTH, ERR_DATA_LIMIT, ERR_DATA_RANGE, ERR_INSTRUCTION,
                     ERR_RESULT_FAIL, HW_OVERHEATING, HW_OVERLOAD, STATUS_ALERT, ModelSpec, model as model_spec)
from .protocol import (BROADCAST_ID, INST_PING, INST_READ, INST_REBOOT, INST_SYNC_READ, INST_SYNC_WRITE,
                       INST_WRITE, Packet, PacketParser, byte_time_s, status_packet)
from .table import ServoTable

LOG = logging.getLogger(__name__)
MEMORY_SIZE = 256
AMBIENT_C = 28.0


@dataclass(frozen=True)
class _Layout:
    """Per-model lookup tables, so the hot path is slicing and struct calls, not register loops."""

    fields: dict[str, tuple[int, struct.Struct]]
    readonly: bytes          # 1 where a read-only register byte sits
    starts: bytes            # 1 where a register begins
    ends: bytes              # 1 where a register ends (index = end address)


@functools.lru_cache(maxsize=None)
def _layout(spec: ModelSpec) -> _Layout:
    fmt = {(1, False): "<B", (2, False): "<H", (4, False): "<I", (1, True): "<b", (2, True): "<h", (4, True): "<i"}
    readonly, starts, ends = bytearray(MEMORY_SIZE), bytearray(MEMORY_SIZE), bytearray(MEMORY_SIZE + 1)
    fields = {}
    for reg in spec.registers:
        fields[reg.name] = (reg.address, struct.Struct(fmt[reg.size, reg.signed]))
        starts[reg.address] = 1
        ends[reg.end] = 1
        if reg.access == "R":
            readonly[reg.address:reg.end] = b"\x01" * reg.size
    return _Layout(fields, bytes(readonly), bytes(starts), bytes(ends))


@dataclass
class EmulatedServo:
    """One servo: its control-table memory and its simulated mechanics."""

    dxl_id: int
    model: ModelSpec
    position: float
    t_last: float
    memory: bytearray = field(default_factory=lambda: bytearray(MEMORY_SIZE))
    powered: bool = True
    temperature_c: float = AMBIENT_C
    overloaded: bool = False
    goal_min_seen: int | None = None
    goal_max_seen: int | None = None
    max_goal_jump: int = 0
    last_goal: int | None = None
    rejected_writes: int = 0
    response_time_s: float = 0.0       # first-order lag of the servo's response to its goal (s)
    # Where that response is (ticks); the horn follows it. Starts where the horn is.
    response: float = field(init=False)

    def __post_init__(self) -> None:
        self.layout = _layout(self.model)
        if not (math.isfinite(self.response_time_s) and self.response_time_s >= 0):
            raise ConfigError(f"emulator: response_time_s must be >= 0, got {self.response_time_s}")
        self.response = self.position
        self.reset_memory(eeprom=True)

    # -- memory -------------------------------------------------------------------------------
    def reset_memory(self, eeprom: bool) -> None:
        """Initial values (power-on: everything; reboot: RAM only, EEPROM persists)."""
        for reg in self.model.registers:
            if eeprom or not reg.eeprom:
                self.memory[reg.address:reg.end] = reg.encode(reg.initial)
        self.memory[7] = self.dxl_id
        self.set("Goal_Position", int(round(self.position)))
        self.set("Present_Position", int(round(self.position)))

    def get(self, name: str) -> int:
        offset, st = self.layout.fields[name]
        return st.unpack_from(self.memory, offset)[0]

    def set(self, name: str, value: int) -> None:
        offset, st = self.layout.fields[name]
        st.pack_into(self.memory, offset, value)

    @property
    def torque(self) -> bool:
        return self.memory[64] == 1

    # -- mechanics ----------------------------------------------------------------------------
    def speed_ticks_s(self) -> float:
        units = self.get("Profile_Velocity") or self.get("Velocity_Limit")
        cap = self.model.no_load_speed_rpm / self.model.velocity_unit_rpm
        return self.model.ticks_per_s(min(units, cap) if units else cap)

    def update(self, now: float) -> None:
        """Advance the motion to ``now`` and refresh the present-value registers."""
        dt = now - self.t_last
        self.set("Present_Temperature", int(round(self.temperature_c)))
        if dt <= 0:
            return                # no time has passed: the last velocity/current still stand
        self.t_last = now
        velocity = 0.0
        goal = self.get("Goal_Position")
        if self.torque:
            if self.response_time_s > 0:
                # Exact discretization of dr/dt = (goal - r) / tau over dt (goal held).
                self.response += (goal - self.response) * -math.expm1(-dt / self.response_time_s)
            else:
                self.response = float(goal)
            error = self.response - self.position
            step = min(abs(error), self.speed_ticks_s() * dt)
            self.position += step if error > 0 else -step
            velocity = (step / dt) * (1 if error > 0 else -1)
        else:
            self.response = self.position      # limp: the response restarts from where the horn is
        ticks = int(round(self.position))
        self.set("Present_Position", ticks)
        self.set("Present_Velocity", int(round(velocity / self.model.ticks_per_s(1.0))))
        self.set("Moving", int(self.torque and goal != ticks))
        self.set("Present_Current", self._current_units(velocity))
        self.set("Present_Input_Voltage", 50 if self.model.name.startswith("XL") else 120)
        self.set("Realtime_Tick", int(now * 1000) % 32768)

    def _current_units(self, velocity_ticks_s: float) -> int:
        limit = self.get("Current_Limit")
        if self.overloaded:
            return limit
        if not self.torque:
            return 0
        amps = 0.04 + 0.0002 * abs(velocity_ticks_s)   # holding the skin + a speed-dependent part
        return int(min(limit, round(amps / self.model.current_unit_a)))


@dataclass
class EmulatorStats:
    """What went over the wire, for tests and the benchmark."""

    instructions: int = 0
    status_packets: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0
    corrupted: int = 0
    crc_errors: int = 0
    sync_writes: int = 0
    sync_reads: int = 0
    by_instruction: dict[int, int] = field(default_factory=dict)
    #: With bus timing: how late (s) the last answer of each instruction left, vs the modelled bus.
    lateness_s: "collections.deque[float]" = field(default_factory=lambda: collections.deque(maxlen=100_000))


def _groups(replies: list[tuple[float, bytes]], size: int = 4) -> list[tuple[float, bytes]]:
    """(deadline, bytes) groups: the last reply alone, the others in groups of ``size``."""
    if not replies or not replies[0][0]:
        return [(0.0, b"".join(raw for _, raw in replies))] if replies else []
    cuts = [len(replies) - 1]
    cuts += list(range(len(replies) - 1 - size, -1, -size))
    groups, start = [], 0
    for end in sorted(set(cuts)) + [len(replies)]:
        if end > start:
            groups.append((replies[end - 1][0], b"".join(raw for _, raw in replies[start:end])))
            start = end
    return groups


def _fine_timer_slack() -> None:
    """Ask Linux for 1 us timer slack on this thread (default 50 us), so bus timing sleeps end on time."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(29, 1000, 0, 0, 0)   # PR_SET_TIMERSLACK, in ns
    except (OSError, AttributeError):
        pass


class BusEmulator:
    """Dynamixel Protocol 2.0 bus on a pty: ``with BusEmulator.from_table(t, link=p) as emu: ...``."""

    def __init__(self, servos: Iterable[tuple[int, str | ModelSpec, float]], *, link: str | Path | None = None,
                 baudrate: int = 1_000_000, timing: bool = False, clock: Clock | None = None,
                 seed: int = 0, response_time_s: float = 0.0) -> None:
        self.clock: Clock = clock or MonotonicClock()
        now = self.clock.now()
        self._servos: dict[int, EmulatedServo] = {}
        for dxl_id, spec, position in servos:
            spec = spec if isinstance(spec, ModelSpec) else model_spec(spec)
            if dxl_id in self._servos:
                raise ConfigError(f"emulator: duplicate servo id {dxl_id}")
            self._servos[dxl_id] = EmulatedServo(dxl_id, spec, float(position), now,
                                                 response_time_s=float(response_time_s))
        self.link = Path(link) if link is not None else None
        self.baudrate = int(baudrate)
        self.timing = timing
        self.stats = EmulatorStats()
        self._rng = random.Random(seed)
        self._drop_rate = 0.0
        self._corrupt_rate = 0.0
        self._drop_next: list[tuple[int, frozenset[int] | None]] = []      # [count, ids]
        self._corrupt_next: list[tuple[int, frozenset[int] | None]] = []
        self._lock = threading.RLock()
        self._parser = PacketParser()
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._requests: "queue.Queue[tuple[Callable[[], None], threading.Event]]" = queue.Queue()
        self._bus_free_at = 0.0

    @classmethod
    def from_table(cls, table: ServoTable, positions: dict[int, float] | None = None,
                   **kwargs: Any) -> "BusEmulator":
        """Every servo of the table, resting at its home position unless ``positions`` says otherwise.

        ``kwargs`` are the constructor's keywords, passed through (Any: callers build them as
        dicts, and the constructor's own signature checks them). The plant model
        (``response_time_s``) comes from the table's ``emulator:`` section unless given here.
        """
        positions = positions or {}
        kwargs.setdefault("response_time_s", float(table.emulator.get("response_time_s", 0.0)))
        return cls(((s.id, s.model, positions.get(s.id, s.home)) for s in table.servos), **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> str:
        """What a driver should open: the link if one was asked for, else the pty slave path."""
        return str(self.link) if self.link is not None else self._slave_name

    @property
    def device(self) -> str:
        """The pty slave device (``/dev/pts/N``) while plugged in, else ''."""
        return self._slave_name if self._master is not None else ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "BusEmulator":
        if self.running:
            return self
        self._plug()
        self._wake_r, self._wake_w = os.pipe()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dxl-bus-emulator", daemon=True)
        self._thread.start()
        LOG.info("servo bus emulator: %d servo(s) on %s%s", len(self._servos), self._slave_name,
                 f" (link {self.link})" if self.link else "")
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=5)
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._unplug()

    def __enter__(self) -> "BusEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection ----------------------------------------------------------------------
    def unplug(self) -> None:
        """Pull the USB adapter: the pty closes (the driver's reads and writes fail) and the link goes."""
        self._in_thread(self._unplug)

    def replug(self) -> None:
        """Plug it back: a fresh pty behind the same link path."""
        self._in_thread(self._plug)

    def drop_responses(self, count: int = 1, ids: Iterable[int] | None = None) -> None:
        """Swallow the next ``count`` status packets (from ``ids`` only, if given)."""
        with self._lock:
            self._drop_next.append((count, frozenset(ids) if ids is not None else None))

    def corrupt_responses(self, count: int = 1, ids: Iterable[int] | None = None) -> None:
        """Damage the next ``count`` status packets so their CRC fails."""
        with self._lock:
            self._corrupt_next.append((count, frozenset(ids) if ids is not None else None))

    def wait_for_sync_writes(self, applied_before: int, timeout_s: float = 1.0) -> bool:
        """Wait until more than ``applied_before`` Sync Writes have been applied (``stats``).

        A Sync Write has no answer, so this thread may apply it after the driver has already moved
        a manual clock on -- and a servo would start toward the new goal a cycle late, depending on
        scheduling. Callers that step a manual clock wait here so a run is reproducible. False on
        timeout (a port that went away).
        """
        deadline = time.monotonic() + timeout_s
        while self.stats.sync_writes <= applied_before:
            if time.monotonic() > deadline:
                return False
            time.sleep(0)           # yield (GIL and CPU) to the emulator's thread
        return True

    def set_fault_rates(self, drop: float = 0.0, corrupt: float = 0.0) -> None:
        """Random drop/corruption probability per status packet (seeded RNG: reproducible)."""
        if not (0 <= drop <= 1 and 0 <= corrupt <= 1):
            raise InputError("fault rates must be within [0, 1]")
        with self._lock:
            self._drop_rate, self._corrupt_rate = drop, corrupt

    def inject_hardware_error(self, dxl_id: int, bits: int = HW_OVERLOAD) -> None:
        """Raise Hardware_Error_Status bits; bits in the Shutdown mask release torque, as on X-series."""
        with self._lock:
            servo = self._servo(dxl_id)
            servo.update(self.clock.now())
            servo.set("Hardware_Error_Status", servo.get("Hardware_Error_Status") | bits)
            if bits & HW_OVERLOAD:
                servo.overloaded = True
            if bits & HW_OVERHEATING:
                servo.temperature_c = max(servo.temperature_c, servo.get("Temperature_Limit") + 1)
            if servo.get("Hardware_Error_Status") & servo.get("Shutdown"):
                servo.set("Torque_Enable", 0)

    def overload(self, dxl_id: int) -> None:
        self.inject_hardware_error(dxl_id, HW_OVERLOAD)

    def set_temperature(self, dxl_id: int, celsius: float) -> None:
        with self._lock:
            self._servo(dxl_id).temperature_c = float(celsius)

    def power(self, ids: Iterable[int], on: bool) -> None:
        """Cut or restore power of some servos: off means silent; on means a fresh boot (torque off)."""
        with self._lock:
            now = self.clock.now()
            for dxl_id in ids:
                servo = self._servo(dxl_id)
                if on and not servo.powered:
                    servo.t_last = now
                    servo.overloaded = False
                    servo.reset_memory(eeprom=False)
                servo.powered = on

    # -- inspection ---------------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(self._servos)

    def servo(self, dxl_id: int) -> EmulatedServo:
        return self._servo(dxl_id)

    def register(self, dxl_id: int, name: str) -> int:
        with self._lock:
            servo = self._servo(dxl_id)
            servo.update(self.clock.now())
            return servo.get(name)

    def registers(self, name: str) -> dict[int, int]:
        with self._lock:
            now = self.clock.now()
            out = {}
            for dxl_id, servo in self._servos.items():
                servo.update(now)
                out[dxl_id] = servo.get(name)
            return out

    # -- pty ----------------------------------------------------------------------------------
    def _plug(self) -> None:
        if self._master is not None:
            return
        if self.link is not None:
            if self.link.exists() and not self.link.is_symlink():
                raise InputError(f"emulator link {self.link} exists and is not a symlink; not replacing it")
            if not self.link.parent.is_dir():
                raise InputError(f"emulator link {self.link}: directory {self.link.parent} does not exist")
        master, slave = os.openpty()
        # Raw mode on the line discipline: no echo, no CR/LF translation, every byte as it comes.
        tty.setraw(slave)
        os.set_blocking(master, False)
        # We keep our own slave fd open: otherwise the master reads EIO whenever the driver closes.
        self._master, self._slave, self._slave_name = master, slave, os.ttyname(slave)
        self._parser.reset()
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._slave_name)
            tmp.replace(self.link)        # atomic: the link never points nowhere mid-update

    def _unplug(self) -> None:
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self._slave_name:
            self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def _in_thread(self, fn: Callable[[], None]) -> None:
        """Run pty changes on the I/O thread so it never selects on a closed fd."""
        if not self.running or threading.current_thread() is self._thread:
            fn()
            return
        done = threading.Event()
        self._requests.put((fn, done))
        os.write(self._wake_w, b"r")
        if not done.wait(timeout=5):
            raise RuntimeError("servo bus emulator thread did not answer")

    # -- the I/O thread -----------------------------------------------------------------------
    def _run(self) -> None:
        _fine_timer_slack()
        while not self._stop.is_set():
            fds = [self._wake_r] + ([self._master] if self._master is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.5)
            except (OSError, ValueError):
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
                self._serve_requests()
            if self._master is not None and self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    LOG.debug("emulator pty read failed: %s", exc)
                    time.sleep(0.01)          # a broken pty must not turn this loop into a spin
                    continue
                if data:
                    self._on_bytes(data, time.perf_counter())

    def _serve_requests(self) -> None:
        while True:
            try:
                fn, done = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            finally:
                done.set()

    def _on_bytes(self, data: bytes, t_rx: float) -> None:
        with self._lock:
            self.stats.bytes_in += len(data)
            replies: list[tuple[float, bytes]] = []
            for packet in self._parser.feed(data):
                replies.extend(self._handle_timed(packet, t_rx))
        self._send(replies)

    def _handle_timed(self, packet: Packet, t_rx: float) -> list[tuple[float, bytes]]:
        """Answer one instruction; with bus timing, stamp each answer with when it may leave."""
        answers = self._apply_faults(self._handle(packet))
        if not self.timing:
            return [(0.0, raw) for _, raw in answers]
        byte_s = byte_time_s(self.baudrate)
        t = max(t_rx, self._bus_free_at) + packet.raw_length * byte_s
        timed = []
        for dxl_id, raw in answers:
            t += self._servos[dxl_id].memory[9] * 2e-6 + len(raw) * byte_s
            timed.append((t, raw))
        self._bus_free_at = t
        return timed

    def _send(self, replies: list[tuple[float, bytes]]) -> None:
        """Write answers, none before its deadline. Answers are grouped so the thread wakes a few
        times per Sync Read instead of once per servo: each group leaves when its *last* packet is
        due, so bytes can arrive later than on a real bus but never earlier, and the final packet
        (what the driver waits for) goes alone, exactly on time."""
        groups = _groups(replies)
        for n, (deadline, chunk) in enumerate(groups, 1):
            if deadline:
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if n == len(groups):
                    self.stats.lateness_s.append(time.perf_counter() - deadline)
            master = self._master
            if master is None:
                return
            try:
                os.write(master, chunk)
            except OSError:
                return          # nobody listening (buffer full) is a silent bus, not a crash

    # -- instruction handling -----------------------------------------------------------------
    def _handle(self, packet: Packet) -> list[tuple[int, bytes]]:
        self.stats.instructions += 1
        self.stats.by_instruction[packet.instruction] = self.stats.by_instruction.get(packet.instruction, 0) + 1
        now = self.clock.now()
        targets = self._addressed(packet.dxl_id)
        if not packet.crc_ok:
            self.stats.crc_errors += 1
            return self._status_all([s for s in targets if packet.dxl_id != BROADCAST_ID], ERR_CRC)
        inst, params = packet.instruction, packet.params
        if inst == INST_PING:
            return [self._reply(s, 0, s.memory[0:2] + s.memory[6:7]) for s in targets]
        if inst == INST_SYNC_WRITE:
            self._sync_write(params, now)
            return []
        if inst == INST_SYNC_READ:
            return self._sync_read(params, now)
        if inst == INST_READ:
            return [a for s in targets if (a := self._read(s, params, now)) is not None]
        if inst == INST_WRITE:
            answers = [self._write(s, params, now) for s in targets]
            return [] if packet.dxl_id == BROADCAST_ID else answers
        if inst == INST_REBOOT:
            answers = [self._reply(s, 0) for s in targets if packet.dxl_id != BROADCAST_ID]
            for s in targets:
                self._reboot(s, now)
            return answers
        return self._status_all([s for s in targets if packet.dxl_id != BROADCAST_ID], ERR_INSTRUCTION)

    def _addressed(self, dxl_id: int) -> list[EmulatedServo]:
        if dxl_id == BROADCAST_ID:
            return [s for s in self._servos.values() if s.powered]
        servo = self._servos.get(dxl_id)
        return [servo] if servo is not None and servo.powered else []

    def _status_all(self, servos: list[EmulatedServo], error: int) -> list[tuple[int, bytes]]:
        return [self._reply(s, error) for s in servos]

    def _reply(self, servo: EmulatedServo, error: int, params: bytes | bytearray = b"") -> tuple[int, bytes]:
        if servo.get("Hardware_Error_Status"):
            error |= STATUS_ALERT
        return servo.dxl_id, status_packet(servo.dxl_id, error, bytes(params))

    def _read(self, servo: EmulatedServo, params: bytes, now: float) -> tuple[int, bytes] | None:
        if len(params) != 4:
            return self._reply(servo, ERR_DATA_LENGTH)
        address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
        if address + size > MEMORY_SIZE or size == 0:
            return self._reply(servo, ERR_ACCESS)
        servo.update(now)
        return self._reply(servo, 0, servo.memory[address:address + size])

    def _sync_read(self, params: bytes, now: float) -> list[tuple[int, bytes]]:
        self.stats.sync_reads += 1
        if len(params) < 5:
            return []
        address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
        answers = []
        for dxl_id in params[4:]:
            servo = self._servos.get(dxl_id)
            if servo is None or not servo.powered:
                continue
            if address + size > MEMORY_SIZE or size == 0:
                answers.append(self._reply(servo, ERR_ACCESS))
                continue
            servo.update(now)
            answers.append(self._reply(servo, 0, servo.memory[address:address + size]))
        return answers

    def _sync_write(self, params: bytes, now: float) -> None:
        self.stats.sync_writes += 1
        if len(params) < 4:
            return
        address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
        body = params[4:]
        if size == 0 or len(body) % (size + 1):
            return
        for i in range(0, len(body), size + 1):
            servo = self._servos.get(body[i])
            if servo is not None and servo.powered:
                # Sync Write has no status packet: a refused value is simply not applied.
                self._apply_write(servo, address, body[i + 1:i + 1 + size], now)

    def _write(self, servo: EmulatedServo, params: bytes, now: float) -> tuple[int, bytes]:
        if len(params) < 3:
            return self._reply(servo, ERR_DATA_LENGTH)
        address = params[0] | params[1] << 8
        return self._reply(servo, self._apply_write(servo, address, params[2:], now))

    def _apply_write(self, servo: EmulatedServo, address: int, data: bytes, now: float) -> int:
        """Write ``data`` at ``address`` if the control table allows it; returns the error number."""
        error = self._check_write(servo, address, data)
        if error:
            servo.rejected_writes += 1
            return error
        servo.update(now)       # motion so far happened under the old goal/profile
        was_on = servo.torque
        servo.memory[address:address + len(data)] = data
        if not was_on and servo.torque:
            servo.t_last = now
        if address <= 116 < address + len(data):
            self._note_goal(servo, servo.get("Goal_Position"))
        return 0

    def _check_write(self, servo: EmulatedServo, address: int, data: bytes) -> int:
        """The control table's rules: whole registers only, no read-only bytes, EEPROM locked while
        torque is on, Torque_Enable 0/1 (and not while shut down), goal within the position limits."""
        end = address + len(data)
        if end > MEMORY_SIZE:
            return ERR_ACCESS
        layout = servo.layout
        if any(layout.readonly[address:end]) or (address < EEPROM_END and servo.torque):
            return ERR_ACCESS
        if not (layout.starts[address] and layout.ends[end]):
            return ERR_DATA_LENGTH      # partial register writes are refused
        if address <= 64 < end:
            torque = data[64 - address]
            if torque > 1:
                return ERR_DATA_RANGE
            if torque == 1 and servo.get("Hardware_Error_Status") & servo.get("Shutdown"):
                return ERR_RESULT_FAIL       # shut down: only a reboot re-enables torque
        if address <= 116 < end:
            goal = int.from_bytes(data[116 - address:120 - address], "little", signed=True)
            if not servo.get("Min_Position_Limit") <= goal <= servo.get("Max_Position_Limit"):
                return ERR_DATA_LIMIT
        return 0

    def _note_goal(self, servo: EmulatedServo, goal: int) -> None:
        """Record every accepted goal: tests check that none left the limits or jumped."""
        if servo.last_goal is not None:
            servo.max_goal_jump = max(servo.max_goal_jump, abs(goal - servo.last_goal))
        servo.goal_min_seen = goal if servo.goal_min_seen is None else min(servo.goal_min_seen, goal)
        servo.goal_max_seen = goal if servo.goal_max_seen is None else max(servo.goal_max_seen, goal)
        servo.last_goal = goal

    def _reboot(self, servo: EmulatedServo, now: float) -> None:
        servo.update(now)
        servo.overloaded = False
        # A reboot clears the error, not the heat: the driver must check the temperature before torque.
        servo.reset_memory(eeprom=False)      # RAM back to initial values: torque off, error cleared

    def _servo(self, dxl_id: int) -> EmulatedServo:
        try:
            return self._servos[dxl_id]
        except KeyError:
            raise InputError(f"emulator has no servo with id {dxl_id}") from None

    # -- faults applied to outgoing packets ---------------------------------------------------
    def _apply_faults(self, answers: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        out = []
        for dxl_id, raw in answers:
            if self._fault(self._drop_next, dxl_id, self._drop_rate):
                self.stats.dropped += 1
                continue
            if self._fault(self._corrupt_next, dxl_id, self._corrupt_rate):
                self.stats.corrupted += 1
                raw = raw[:-3] + bytes((raw[-3] ^ 0x5A,)) + raw[-2:]   # payload damaged, CRC kept
            self.stats.status_packets += 1
            self.stats.bytes_out += len(raw)
            out.append((dxl_id, raw))
        return out

    def _fault(self, queue_: list[tuple[int, frozenset[int] | None]], dxl_id: int, rate: float) -> bool:
        for i, (count, ids) in enumerate(queue_):
            if ids is None or dxl_id in ids:
                if count <= 1:
                    del queue_[i]
                else:
                    queue_[i] = (count - 1, ids)
                return True
        return rate > 0 and self._rng.random() < rate
