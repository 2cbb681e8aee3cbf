"""Dynamixel Protocol 2.0 framing: CRC-16, byte stuffing, instruction and status packets.

Packet layout: ``FF FF FD 00 | ID | LEN_L LEN_H | INST | params... | CRC_L CRC_H`` where LEN counts
INST + params (after stuffing) + CRC. Inside the instruction/params, any ``FF FF FD`` is followed by
an extra ``FD`` so it cannot be mistaken for a header; the CRC covers the stuffed bytes.

The driver sends and parses packets with the real ``dynamixel_sdk``; this module is what the
emulator uses to play the servo side, and what the benchmark uses to count bus bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 252

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REG_WRITE = 0x04
INST_ACTION = 0x05
INST_FACTORY_RESET = 0x06
INST_REBOOT = 0x08
INST_CLEAR = 0x10
INST_STATUS = 0x55
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83
INST_FAST_SYNC_READ = 0x8A
INST_BULK_READ = 0x92
INST_BULK_WRITE = 0x93

#: Bytes a packet occupies besides its (unstuffed) parameters: header 4, id 1, length 2, inst 1, crc 2.
OVERHEAD = 10
#: A status packet adds the error byte to that.
STATUS_OVERHEAD = OVERHEAD + 1


def _crc_table() -> tuple[int, ...]:
    # CRC-16 with polynomial 0x8005 (CRC-16/BUYPASS, no reflection, init 0), as in the Protocol 2.0 spec.
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    table = CRC_TABLE
    for byte in data:
        crc = ((crc << 8) ^ table[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert 0xFD after every FF FF FD in ``body`` (instruction/error + params)."""
    if b"\xff\xff\xfd" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and i >= 2 and body[i - 1] == 0xFF and body[i - 2] == 0xFF:
            out.append(0xFD)
        i += 1
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Remove the 0xFD stuffed after every FF FF FD."""
    if b"\xff\xff\xfd\xfd" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and i >= 2 and body[i - 1] == 0xFF and body[i - 2] == 0xFF \
                and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1
        i += 1
    return bytes(out)


def build_packet(dxl_id: int, body: bytes) -> bytes:
    """Frame ``body`` (instruction or 0x55+error, then params) into a complete packet."""
    stuffed = stuff(body)
    length = len(stuffed) + 2
    head = HEADER + bytes((dxl_id, length & 0xFF, length >> 8))
    packet = head + stuffed
    crc = crc16(packet)
    return packet + bytes((crc & 0xFF, crc >> 8))


def instruction_packet(dxl_id: int, instruction: int, params: bytes = b"") -> bytes:
    return build_packet(dxl_id, bytes((instruction,)) + params)


def status_packet(dxl_id: int, error: int, params: bytes = b"") -> bytes:
    return build_packet(dxl_id, bytes((INST_STATUS, error)) + params)


@dataclass(frozen=True)
class Packet:
    """A parsed packet: ``instruction`` is 0x55 for status packets; ``params`` are unstuffed."""

    dxl_id: int
    instruction: int
    params: bytes
    crc_ok: bool
    raw_length: int

    @property
    def error(self) -> int:
        """Error byte of a status packet."""
        return self.params[0] if self.instruction == INST_STATUS and self.params else 0


class PacketParser:
    """Incremental parser: feed bytes, get complete packets; resynchronizes on garbage."""

    def __init__(self, max_length: int = 1024) -> None:
        self._buf = bytearray()
        self._max_length = max_length
        self.discarded = 0   # bytes thrown away while hunting for a header

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        packets: list[Packet] = []
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # Keep a possible partial header at the end.
                keep = 3 if len(self._buf) >= 3 else len(self._buf)
                self.discarded += len(self._buf) - keep
                del self._buf[:len(self._buf) - keep]
                return packets
            if start:
                self.discarded += start
                del self._buf[:start]
            if len(self._buf) < 7:
                return packets
            length = self._buf[5] | (self._buf[6] << 8)
            if length < 3 or length > self._max_length:
                self.discarded += 1
                del self._buf[:1]
                continue
            total = 7 + length
            if len(self._buf) < total:
                return packets
            raw = bytes(self._buf[:total])
            del self._buf[:total]
            crc_ok = crc16(raw[:-2]) == (raw[-2] | (raw[-1] << 8))
            body = unstuff(raw[7:-2])
            packets.append(Packet(raw[4], body[0], body[1:], crc_ok, total))

    def reset(self) -> None:
        self._buf.clear()


# --- Packet sizes (for bus-time arithmetic) ---------------------------------------------------

def sync_write_size(n_servos: int, data_length: int) -> int:
    """Bytes of a Sync Write: overhead + addr(2) + len(2) + n * (id + data)."""
    return OVERHEAD + 4 + n_servos * (1 + data_length)


def sync_read_size(n_servos: int) -> int:
    """Bytes of a Sync Read instruction: overhead + addr(2) + len(2) + n ids."""
    return OVERHEAD + 4 + n_servos


def read_status_size(data_length: int) -> int:
    """Bytes of the status packet answering a read of ``data_length`` bytes."""
    return STATUS_OVERHEAD + data_length


def byte_time_s(baudrate: int) -> float:
    """One byte on the wire: start bit + 8 data bits + stop bit."""
    return 10.0 / baudrate
