"""A thin, typed wrapper over the real ``dynamixel_sdk`` (Protocol 2.0).

Every packet goes through the SDK's ``Protocol2PacketHandler``; this module adds what a robot
needs around it: retries, and two kinds of exceptions that say exactly what failed:

* :class:`TransportError` -- no usable answer (timeout, corrupt packet, port gone); names the
  operation, register, ids, tries and port, and ``port_lost`` tells the driver to reconnect;
* :class:`ServoError` -- a servo answered with an error number (access, range, limit, ...).

The hardware-alert bit (bit 7 of a status packet's error byte) is not an exception: it is how a
servo says "read my Hardware_Error_Status"; the ids that raised it collect in :attr:`ServoBus.alerts`.

:class:`EmoPortHandler` is the SDK's ``PortHandler`` with two transport-level changes: the latency
timer in the SDK's timeout formula is a parameter (the SDK hard-codes 16 ms, right for an FTDI
adapter at its default latency timer, 15 ms too slow once the udev rule sets it to 1 ms), and reads
wait in ``select()`` instead of spinning, so a waiting driver leaves the CPU (and the GIL) free.
"""
from __future__ import annotations

import logging
import os
import select
import termios
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import serial
from dynamixel_sdk import GroupSyncWrite, PacketHandler, PortHandler
from dynamixel_sdk.robotis_def import COMM_RX_CORRUPT, COMM_SUCCESS

from ..errors import EmoError
from .models import ERR_CRC, STATUS_ALERT, STATUS_ERRORS, Register

LOG = logging.getLogger(__name__)
T = TypeVar("T")
_PORT_EXCEPTIONS = (serial.SerialException, OSError, termios.error)


class TransportError(EmoError):
    """No valid status packet: timeout, corruption, or the port itself failed."""

    def __init__(self, message: str, *, port: str = "", operation: str = "", register: str = "",
                 ids: Sequence[int] = (), tries: int = 0, port_lost: bool = False) -> None:
        super().__init__(message)
        self.port, self.operation, self.register = port, operation, register
        self.ids, self.tries, self.port_lost = tuple(ids), tries, port_lost


class ServoError(EmoError):
    """A servo answered with an error number in its status packet."""

    def __init__(self, message: str, *, operation: str = "", register: str = "",
                 errors: Mapping[int, int] | None = None, tries: int = 0) -> None:
        super().__init__(message)
        self.operation, self.register = operation, register
        self.errors = dict(errors or {})
        self.ids = tuple(self.errors)
        self.tries = tries


def describe_ids(ids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (error messages name ids compactly)."""
    ids = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(parts)


class EmoPortHandler(PortHandler):
    """The SDK PortHandler with a configurable latency timer and a sleeping (not spinning) read."""

    def __init__(self, port_name: str, latency_timer_ms: float = 16.0, blocking_read: bool = True) -> None:
        super().__init__(port_name)
        self.latency_timer_ms = float(latency_timer_ms)
        self.blocking_read = blocking_read
        self.extra_timeout_ms = 0.0       # the bus sets this: return delays of the packets awaited
        self._tx_done_ms = 0.0            # when the bytes written so far have left the adapter

    def writePort(self, packet: list[int] | bytes) -> int:  # noqa: N802 (SDK naming)
        now = self.getCurrentTime()
        self._tx_done_ms = max(now, self._tx_done_ms) + len(packet) * self.tx_time_per_byte
        return super().writePort(packet)

    def setPacketTimeout(self, packet_length: int) -> None:  # noqa: N802 (SDK naming)
        # The SDK's formula, with our latency timer instead of its module constant, plus what it
        # leaves out: the Return_Delay_Time of each awaited packet (26 servos at the factory 500 us
        # would time out), and bytes still queued for transmission (a Sync Write sent just before).
        now = self.getCurrentTime()
        self.packet_start_time = now
        self.packet_timeout = (self.tx_time_per_byte * packet_length + self.latency_timer_ms * 2.0 + 2.0
                               + self.extra_timeout_ms + max(0.0, self._tx_done_ms - now))

    def readPort(self, length: int) -> bytes:  # noqa: N802 (SDK naming)
        if not self.blocking_read:
            return super().readPort(length)
        # Wait (without the GIL) until bytes arrive or the SDK's packet timeout would fire.
        left_s = (self.packet_timeout - (self.getCurrentTime() - self.packet_start_time)) / 1000.0
        fd = self.ser.fd
        ready, _, _ = select.select([fd], [], [], min(max(left_s, 0.0), 0.1))
        if not ready:
            return b""
        data = os.read(fd, length)
        if not data:
            raise serial.SerialException("device reports readiness to read but returned no data "
                                         "(device disconnected?)")
        return data


@dataclass
class BusStats:
    """Counters since the bus was created (kept across reconnects)."""

    operations: int = 0
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0
    servo_errors: int = 0
    port_losses: int = 0


class ServoBus:
    """One serial port with Dynamixel servos on it."""

    def __init__(self, port: str, baudrate: int = 1_000_000, *, latency_timer_ms: float = 16.0,
                 retries: int = 2, blocking_read: bool = True) -> None:
        self.port_name = str(port)
        self.baudrate = int(baudrate)
        self.latency_timer_ms = latency_timer_ms
        self.tries = max(1, int(retries) + 1)
        self.blocking_read = blocking_read
        self.stats = BusStats()
        self.alerts: set[int] = set()
        #: Return_Delay_Time assumed in timeouts, per status packet; the factory 250 x 2 us until the
        #: driver has read (or written) the real value.
        self.return_delay_us = 500.0
        self._port: EmoPortHandler | None = None
        self._ph = PacketHandler(2.0)

    # -- port ---------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._port is not None and self._port.is_open

    def open(self) -> None:
        self.close()
        port = EmoPortHandler(self.port_name, self.latency_timer_ms, self.blocking_read)
        try:
            ok = port.setBaudRate(self.baudrate)
        except _PORT_EXCEPTIONS as exc:
            raise TransportError(f"cannot open servo port {self.port_name}: {_reason(exc)}",
                                 port=self.port_name, operation="open", port_lost=True) from None
        if not ok:
            raise TransportError(f"servo port {self.port_name}: baud rate {self.baudrate} not supported "
                                 "by dynamixel_sdk", port=self.port_name, operation="open")
        self._port = port
        LOG.info("opened servo port %s at %d baud", self.port_name, self.baudrate)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None and port.ser is not None:
            try:
                port.closePort()
            except _PORT_EXCEPTIONS:
                pass  # closing a vanished port must not hide the error that got us here

    def take_alerts(self) -> set[int]:
        alerts, self.alerts = self.alerts, set()
        return alerts

    # -- single-servo operations --------------------------------------------------------------
    def ping(self, dxl_id: int, tries: int | None = None) -> int:
        """Model number of servo ``dxl_id``."""
        return self._transact("ping", "", [dxl_id], lambda p: self._ph.ping(p, dxl_id), tries)

    def scan(self, ids: Iterable[int]) -> dict[int, int]:
        """Model numbers of the ids that answer a ping (one try each; missing ids are absent)."""
        found: dict[int, int] = {}
        for dxl_id in ids:
            try:
                found[dxl_id] = self.ping(dxl_id, tries=1)
            except TransportError as exc:
                if exc.port_lost:
                    raise
        return found

    def broadcast_ping(self) -> dict[int, int]:
        """Model numbers of every servo on the bus (Protocol 2.0 broadcast ping)."""
        port = self._require_port("broadcast ping")
        try:
            found, comm = self._ph.broadcastPing(port)
        except _PORT_EXCEPTIONS as exc:
            raise self._lost("broadcast ping", "", [], 1, exc) from None
        finally:
            port.is_using = False
        return {dxl_id: int(info[0]) for dxl_id, info in found.items()}

    def read(self, dxl_id: int, reg: Register) -> int:
        def op(p: EmoPortHandler) -> tuple[int, int, int]:
            data, comm, err = self._ph.readTxRx(p, dxl_id, reg.address, reg.size)
            if comm == COMM_SUCCESS and len(data) != reg.size:
                comm = COMM_RX_CORRUPT
            return (reg.decode(bytes(data)) if comm == COMM_SUCCESS else 0), comm, err
        return self._transact("read", reg.name, [dxl_id], op)

    def write(self, dxl_id: int, reg: Register, value: int) -> None:
        payload = list(reg.encode(value))

        def op(p: EmoPortHandler) -> tuple[None, int, int]:
            comm, err = self._ph.writeTxRx(p, dxl_id, reg.address, reg.size, payload)
            return None, comm, err
        self._transact("write", reg.name, [dxl_id], op)

    def reboot(self, dxl_id: int) -> None:
        def op(p: EmoPortHandler) -> tuple[None, int, int]:
            comm, err = self._ph.reboot(p, dxl_id)
            return None, comm, err
        self._transact("reboot", "", [dxl_id], op)

    # -- group operations ---------------------------------------------------------------------
    def sync_write(self, reg: Register, values: Mapping[int, int]) -> None:
        """One Sync Write of ``reg`` to many servos (no status packets come back)."""
        self.sync_write_raw(reg.address, reg.size, {i: reg.encode(v) for i, v in values.items()}, reg.name)

    def sync_write_raw(self, address: int, size: int, data: Mapping[int, bytes], what: str) -> None:
        port = self._require_port(f"sync write {what}")
        group = GroupSyncWrite(port, self._ph, address, size)
        for dxl_id, payload in data.items():
            group.addParam(dxl_id, list(payload))
        self.stats.operations += 1
        for attempt in range(1, self.tries + 1):
            try:
                comm = group.txPacket()
            except _PORT_EXCEPTIONS as exc:
                raise self._lost("sync write", what, data, attempt, exc) from None
            finally:
                port.is_using = False
            if comm == COMM_SUCCESS:
                return
            self.stats.retries += 1
        raise TransportError(f"sync write {what} to id(s) {describe_ids(data)} on {self.port_name}: "
                             f"{self._ph.getTxRxResult(comm)} after {self.tries} tries",
                             port=self.port_name, operation="sync write", register=what, ids=list(data),
                             tries=self.tries)

    def sync_read(self, address: int, size: int, ids: Sequence[int], what: str,
                  allow_missing: bool = False) -> dict[int, bytes]:
        """One Sync Read of ``size`` bytes at ``address``; returns each id's bytes.

        A servo that fails mid-way (timeout, CRC) is retried together with the ids after it, so one
        lost packet costs one short re-read, not the whole cycle. With ``allow_missing``, a servo
        that fails every try is left out of the result and the ids after it are still read --
        unless nobody has answered by the second such servo: then the bus, not a servo, is down.
        """
        out: dict[int, bytes] = {}
        errors: dict[int, int] = {}
        pending = list(ids)
        given_up: list[int] = []
        self.stats.operations += 1
        while pending:
            pending, comm = self._sync_read_tries(address, size, pending, what, out, errors)
            if not pending:
                break
            if not allow_missing or (not out and given_up):
                raise TransportError(
                    f"sync read {what} from id(s) {describe_ids(ids)} on {self.port_name}: "
                    f"{_comm_text(self._ph, comm)} from id {pending[0]} after {self.tries} tries",
                    port=self.port_name, operation="sync read", register=what,
                    ids=given_up + pending, tries=self.tries)
            given_up.append(pending.pop(0))
        if errors:
            self.stats.servo_errors += 1
            raise ServoError(f"sync read {what}: {_errors_text(errors)}", operation="sync read",
                             register=what, errors=errors, tries=1)
        return out

    def _sync_read_tries(self, address: int, size: int, pending: list[int], what: str,
                         out: dict[int, bytes], errors: dict[int, int]) -> tuple[list[int], int]:
        """Up to ``tries`` Sync Reads of ``pending``, filling ``out``; returns the ids still unread
        (the first of them is the one that kept failing) and the last communication result."""
        port = self._require_port(f"sync read {what}")
        comm = COMM_SUCCESS
        for attempt in range(1, self.tries + 1):
            port.extra_timeout_ms = len(pending) * self.return_delay_us / 1000.0
            try:
                comm = self._ph.syncReadTx(port, address, size, pending, len(pending), False)
                done = 0
                while comm == COMM_SUCCESS and done < len(pending):
                    dxl_id = pending[done]
                    data, comm, err = self._ph.readRx(port, dxl_id, size)
                    if comm != COMM_SUCCESS:
                        break
                    if len(data) != size and not err & 0x7F:
                        comm = COMM_RX_CORRUPT
                        break
                    self._note_error(dxl_id, err, errors)
                    out[dxl_id] = bytes(data)
                    done += 1
            except _PORT_EXCEPTIONS as exc:
                raise self._lost("sync read", what, pending, attempt, exc) from None
            finally:
                port.is_using = False
            pending = pending[done:]
            if not pending:
                return [], comm
            self._count_failure(comm)
            if attempt < self.tries:
                self.stats.retries += 1
        return pending, comm

    # -- internals ----------------------------------------------------------------------------
    def _require_port(self, what: str) -> EmoPortHandler:
        if self._port is None:
            raise TransportError(f"{what}: servo port {self.port_name} is not open", port=self.port_name,
                                 operation=what, port_lost=True)
        return self._port

    def _transact(self, operation: str, register: str, ids: list[int],
                  op: Callable[[EmoPortHandler], tuple[T, int, int]], tries: int | None = None) -> T:
        """Run one request/response exchange with retries; raise typed errors."""
        port = self._require_port(f"{operation} {register}".strip())
        tries = tries or self.tries
        self.stats.operations += 1
        comm = COMM_SUCCESS
        port.extra_timeout_ms = self.return_delay_us / 1000.0
        for attempt in range(1, tries + 1):
            try:
                result, comm, err = op(port)
            except _PORT_EXCEPTIONS as exc:
                raise self._lost(operation, register, ids, attempt, exc) from None
            finally:
                port.is_using = False
            if comm == COMM_SUCCESS:
                errors: dict[int, int] = {}
                self._note_error(ids[0], err, errors)
                if not errors:
                    return result
                if errors[ids[0]] == ERR_CRC and attempt < tries:
                    self.stats.retries += 1
                    continue          # the servo saw a damaged instruction; sending it again is safe
                self.stats.servo_errors += 1
                target = f" {register}" if register else ""
                raise ServoError(f"{operation}{target} on {self.port_name}: {_errors_text(errors)} "
                                 f"(try {attempt}/{tries})", operation=operation, register=register,
                                 errors=errors, tries=attempt)
            self._count_failure(comm)
            if attempt < tries:
                self.stats.retries += 1
        target = f" {register}" if register else ""
        raise TransportError(f"{operation}{target} id {describe_ids(ids)} on {self.port_name}: "
                             f"{_comm_text(self._ph, comm)} after {tries} tries", port=self.port_name,
                             operation=operation, register=register, ids=ids, tries=tries)

    def _note_error(self, dxl_id: int, err: int, errors: dict[int, int]) -> None:
        if err & STATUS_ALERT:
            self.alerts.add(dxl_id)
        if err & 0x7F:
            errors[dxl_id] = err & 0x7F

    def _count_failure(self, comm: int) -> None:
        if comm == COMM_RX_CORRUPT:
            self.stats.corrupt += 1
        else:
            self.stats.timeouts += 1

    def _lost(self, operation: str, register: str, ids: Iterable[int], attempt: int,
              exc: BaseException) -> TransportError:
        self.stats.port_losses += 1
        self.close()
        target = f" {register}" if register else ""
        ids = list(ids)
        return TransportError(f"servo port {self.port_name} lost during {operation}{target} "
                              f"(id(s) {describe_ids(ids)}, try {attempt}/{self.tries}): {_reason(exc)}",
                              port=self.port_name, operation=operation, register=register, ids=ids,
                              tries=attempt, port_lost=True)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _comm_text(ph: PacketHandler, comm: int) -> str:
    text = ph.getTxRxResult(comm).replace("[TxRxResult] ", "").rstrip("!")
    return text[:1].lower() + text[1:] if text else f"communication result {comm}"


def _errors_text(errors: Mapping[int, int]) -> str:
    return "; ".join(f"id {i}: {STATUS_ERRORS.get(e, f'error {e}')}" for i, e in sorted(errors.items()))
