"""The issue's wire vectors, byte for byte: pymodbus-built requests/replies, our reply parser, the UART frame."""
from __future__ import annotations

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadHoldingRegistersResponse

from drivers.bins.modbus_rtu import build_read_reply, build_read_request, crc_ok, scan_reply, to_signed16
from drivers.bins.uart_frame import UartFrameParser, encode_frame
from edge.config.devices import RegisterMap

DIST_REQ = bytes.fromhex("01 03 01 00 00 01 85 F6")
DIST_REPLY = bytes.fromhex("01 03 02 02 F2 38 A1")  # 754 mm
TEMP_REQ = bytes.fromhex("01 03 01 02 00 01 24 36")
TEMP_REPLY = bytes.fromhex("01 03 02 01 2C B8 09")  # 300 -> 30.0 C
UART = bytes.fromhex("FF 07 A1 A7")  # 1953 mm


def test_pymodbus_framer_builds_the_issue_requests():
    rm = RegisterMap()  # DYP default map
    framer = FramerRTU(DecodePDU(is_server=False))
    assert framer.buildFrame(ReadHoldingRegistersRequest(address=rm.distance_processed, count=1, dev_id=1)) == DIST_REQ
    assert framer.buildFrame(ReadHoldingRegistersRequest(address=rm.temperature, count=1, dev_id=1)) == TEMP_REQ
    assert build_read_request(1, rm.function, rm.distance_processed) == DIST_REQ
    assert build_read_request(1, rm.function, rm.temperature) == TEMP_REQ


def test_pymodbus_server_side_encodes_the_issue_replies():
    framer = FramerRTU(DecodePDU(is_server=True))
    assert framer.buildFrame(ReadHoldingRegistersResponse(registers=[754], dev_id=1)) == DIST_REPLY
    assert build_read_reply(1, 3, [300]) == TEMP_REPLY


@pytest.mark.parametrize("frame", [DIST_REQ, DIST_REPLY, TEMP_REQ, TEMP_REPLY])
def test_vector_crcs(frame):
    assert crc_ok(frame)
    assert FramerRTU.compute_CRC(frame[:-2]).to_bytes(2, "big") == frame[-2:]
    assert not crc_ok(frame[:-1] + bytes([frame[-1] ^ 0x01]))


def test_reply_parser_reads_the_vectors():
    v = scan_reply(DIST_REPLY, unit=1, function=3, count=1, final=False)
    assert v.status == "ok" and v.registers == (754,) and v.noise_bytes == 0
    t = scan_reply(TEMP_REPLY, unit=1, function=3, count=1, final=False)
    assert t.status == "ok" and to_signed16(t.registers[0]) * RegisterMap().temperature_scale == pytest.approx(30.0)
    assert to_signed16(0xFF9C) * 0.1 == pytest.approx(-10.0)  # below freezing is a signed register


def test_reply_parser_verdicts_on_damaged_vectors():
    assert scan_reply(DIST_REPLY[:5], 1, 3, 1, final=False).status == "incomplete"
    assert scan_reply(DIST_REPLY[:5], 1, 3, 1, final=True).status == "truncated"
    assert scan_reply(DIST_REPLY[:-1] + b"\x00", 1, 3, 1, final=True).status == "crc_error"
    assert scan_reply(b"", 1, 3, 1, final=True).status == "no_response"
    other = build_read_reply(2, 3, [754])
    v = scan_reply(other, 1, 3, 1, final=True)
    assert v.status == "wrong_address" and v.from_unit == 2
    noisy = bytes.fromhex("00 FF 13 01") + DIST_REPLY
    v = scan_reply(noisy, 1, 3, 1, final=False)
    assert v.status == "ok" and v.registers == (754,) and v.noise_bytes == 4
    exc = bytes.fromhex("01 83 02")
    exc += FramerRTU.compute_CRC(exc).to_bytes(2, "big")
    v = scan_reply(exc, 1, 3, 1, final=False)
    assert v.status == "exception" and v.exception_code == 2  # illegal data address: wrong register map


def test_uart_vector():
    assert encode_frame(1953) == UART
    assert (0xFF + 0x07 + 0xA1) & 0xFF == 0xA7
    p = UartFrameParser()
    assert p.feed(UART) == [1953]
    # resynchronise after garbage, including a false header (FF) inside the garbage
    assert p.feed(bytes.fromhex("13 FF 00 FF 37") + UART + UART[:2]) == [1953]
    assert p.feed(UART[2:]) == [1953]
    assert p.stats.frames == 3 and p.stats.checksum_errors >= 1 and p.stats.garbage_bytes >= 4
