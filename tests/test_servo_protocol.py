"""Protocol 2.0 framing, checked against the real dynamixel_sdk's own CRC and stuffing."""
from __future__ import annotations

import random

from dynamixel_sdk import PacketHandler

from emo_core.servo.models import MODELS, Register
from emo_core.servo.protocol import (INST_STATUS, PacketParser, crc16, instruction_packet, status_packet,
                                     stuff, sync_read_size, sync_write_size, unstuff)


def test_crc_matches_the_sdk() -> None:
    sdk = PacketHandler(2.0)
    rng = random.Random(1)
    for n in (0, 1, 10, 144, 600):
        data = [rng.randrange(256) for _ in range(n)]
        assert crc16(bytes(data)) == sdk.updateCRC(0, data, n)


def test_packet_matches_sdk_framing() -> None:
    # The ping example of the Protocol 2.0 manual: FF FF FD 00 01 03 00 01 19 4E.
    assert instruction_packet(1, 0x01) == bytes.fromhex("FFFFFD0001030001194E")


def test_stuffing_round_trip_and_parser() -> None:
    body = bytes([0x03, 0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x01])
    assert stuff(body) == bytes([0x03, 0x74, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x01])
    assert unstuff(stuff(body)) == body
    raw = instruction_packet(7, body[0], body[1:])
    parser = PacketParser()
    packets = parser.feed(b"\x00\x12garbage" + raw[:5]) + parser.feed(raw[5:] + status_packet(7, 0x80, b"\x01"))
    assert [p.instruction for p in packets] == [0x03, INST_STATUS]
    assert packets[0].params == body[1:] and packets[0].crc_ok
    assert packets[1].error == 0x80
    damaged = bytearray(raw)
    damaged[-3] ^= 1
    assert not PacketParser().feed(bytes(damaged))[0].crc_ok


def test_packet_sizes() -> None:
    assert sync_write_size(26, 4) == 144
    assert sync_read_size(26) == 40


def test_register_encoding() -> None:
    reg = Register("Present_Current", 126, 2, "R", signed=True)
    assert reg.decode(reg.encode(-5)) == -5
    position = MODELS["XL330-M288"].reg("Goal_Position")
    assert (position.address, position.size) == (116, 4)
    assert MODELS["XM430-W350"].reg("Present_Temperature").address == 146
