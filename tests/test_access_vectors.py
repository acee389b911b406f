"""Byte-for-byte wire vectors from issue 4 and the codecs behind them (UHPPOTE, OSDP, Wiegand, converters)."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from uhppoted import encode as uenc

from drivers.access import uhppote_codec as codec
from drivers.access.converter import ConverterParser, encode_frame
from drivers.access.osdp_frame import FrameParser, build_frame, crc16, crc16_aug_ccitt, parse_keypad, parse_raw
from drivers.access.record_ids import stable_uuid7
from drivers.access.wiegand import WiegandError, bits_from_bytes, bits_to_bytes, decode_bits, encode
from edge.events import uuid7_time_ms
from edge.events.kinds import validate_payload
from simulators.access.uhppote_sim import SimRecord, status_packet

UHPPOTE_VECTOR = bytes.fromhex("17 20 00 00 78 37 2A 18 4E 00 00 00 02 01 03 01 A1 98 7C 00 20 22 08 23 09 47 06 2C")
UHPPOTE_VECTOR += bytes(64 - len(UHPPOTE_VECTOR))
OSDP_POLL = bytes.fromhex("53 65 08 00 04 60 60 90")
OSDP_ID = bytes.fromhex("53 65 09 00 04 61 00 D9 7A")
OSDP_RAW26 = bytes.fromhex("53 E5 10 00 07 50 00 01 1A 00 5A 0C 0F 40 56 BB")
W26_90_324 = "00101101000000001010001000"


# ---- UHPPOTE -----------------------------------------------------------------------------------------
def test_uhppote_vector_decodes_exactly():
    assert len(UHPPOTE_VECTOR) == 64
    p = codec.parse_pushed(UHPPOTE_VECTOR)
    r = p.record
    assert p.controller == 405419896
    assert (r.controller, r.index, r.type, r.granted, r.door, r.direction, r.card, r.reason) == \
        (405419896, 78, 2, True, 3, 1, 8165537, 44)
    assert r.timestamp == dt.datetime(2022, 8, 23, 9, 47, 6)
    assert codec.direction_name(r.direction) == "in"
    m = codec.map_record(r, {3: "东门"})
    assert m.kind == "access.granted"
    assert m.payload == {"controller": "405419896", "door": 3, "door_name": "东门", "direction": "in",
                         "credential": "8165537", "credential_type": "remote", "reason_code": 44,
                         "reason": "remote open door", "record_index": 78, "device_time": "2022-08-23 09:47:06"}
    assert validate_payload(m.kind, m.payload) == m.payload
    # controller local time (BCD, no zone) -> UTC
    assert codec.local_to_utc_ms(r.timestamp, ZoneInfo("Asia/Shanghai")) == \
        int(dt.datetime(2022, 8, 23, 1, 47, 6, tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_uhppote_simulator_encodes_the_vector_byte_for_byte():
    rec = SimRecord(78, 2, True, 3, 1, 8165537, dt.datetime(2022, 8, 23, 9, 47, 6), 44)
    assert status_packet(405419896, rec) == UHPPOTE_VECTOR


def test_uhppote_requests_encoded_by_uhppoted():
    assert bytes(uenc.get_event_request(405419896, 78)) == \
        bytes.fromhex("17 B0 00 00 78 37 2A 18 4E 00 00 00") + bytes(52)
    assert bytes(uenc.get_event_index_request(405419896))[:8] == bytes.fromhex("17 B4 00 00 78 37 2A 18")
    set_idx = bytes(uenc.set_event_index_request(405419896, 78))
    assert set_idx[:16] == bytes.fromhex("17 B2 00 00 78 37 2A 18 4E 00 00 00 55 AA AA 55")
    set_time = bytes(uenc.set_time_request(405419896, dt.datetime(2022, 8, 23, 9, 47, 6)))
    assert set_time[8:15] == bytes.fromhex("20 22 08 23 09 47 06")


@pytest.mark.parametrize("packet,reason", [
    (UHPPOTE_VECTOR[:63], "bad_size"),
    (b"\x18" + UHPPOTE_VECTOR[1:], "bad_header"),
    (UHPPOTE_VECTOR[:1] + b"\xb0" + UHPPOTE_VECTOR[2:], "bad_function"),
])
def test_uhppote_rejects_are_named(packet, reason):
    with pytest.raises(codec.PacketError) as exc:
        codec.parse_pushed(packet)
    assert exc.value.reason == reason


def _rec(reason, granted=True, type_=1, card=8165537):
    return codec.Record(405419896, 5, type_, granted, 1, 2, card, dt.datetime(2026, 1, 1, 8, 0, 0), reason)


@pytest.mark.parametrize("reason,granted,kind", [
    (1, True, "access.granted"), (1, False, "access.denied"),
    *[(r, False, "access.denied") for r in [*range(5, 16), 18]],
    (6, True, "access.denied"),  # a denial reason wins over a stray granted flag
    (20, True, "door.button"), (23, True, "door.opened"), (24, True, "door.closed"),
    (37, False, "door.held_open"), (38, False, "door.forced"), (39, False, "door.fire_alarm"),
    (44, True, "access.granted"), (25, True, "access.granted"),
])
def test_uhppote_reason_mapping(reason, granted, kind):
    m = codec.map_record(_rec(reason, granted))
    assert m.kind == kind
    assert m.payload["reason_code"] == reason
    assert m.payload["direction"] == "out"
    validate_payload(kind, m.payload)


def test_uhppote_records_that_are_not_events():
    assert codec.map_record(_rec(28, type_=2)) is None  # controller power on
    assert codec.map_record(_rec(1, type_=0)) is None
    assert codec.map_record(_rec(1, type_=0xFF)) is None


def test_stable_ids_are_uuid7_and_deterministic():
    a = stable_uuid7(1_661_219_226_000, "uhppote:405419896:78:2022-08-23 09:47:06")
    assert a == stable_uuid7(1_661_219_226_000, "uhppote:405419896:78:2022-08-23 09:47:06")
    assert a != stable_uuid7(1_661_219_226_000, "uhppote:405419896:79:2022-08-23 09:47:06")
    assert uuid7_time_ms(a) == 1_661_219_226_000
    assert a[14] == "7"


# ---- OSDP framing ------------------------------------------------------------------------------------
def test_crc16_aug_ccitt():
    assert crc16_aug_ccitt(b"123456789") == 0xE5CC  # the catalogue check value of CRC-16/AUG-CCITT
    for vec in (OSDP_POLL, OSDP_ID, OSDP_RAW26):
        c = crc16(vec[:-2])
        assert c == crc16_aug_ccitt(vec[:-2])
        assert vec[-2:] == bytes([c & 0xFF, c >> 8])


def test_osdp_frames_built_byte_for_byte():
    assert build_frame(0x65, 0x60) == OSDP_POLL
    assert build_frame(0x65, 0x61, b"\x00") == OSDP_ID
    assert build_frame(0x65, 0x50, bytes.fromhex("00 01 1A 00 5A 0C 0F 40"), seq=3, reply=True) == OSDP_RAW26


def test_osdp_parser_reads_the_vectors_through_noise():
    p = FrameParser()
    stream = b"\x00\x13garbage" + OSDP_POLL + b"\xff" + OSDP_ID + b"\x55\xaa" + OSDP_RAW26
    frames = []
    for i in range(len(stream)):  # byte by byte, as a slow UART delivers them
        frames += p.feed(stream[i:i + 1])
    assert [(f.address, f.reply, f.name, f.seq, f.data.hex()) for f in frames] == [
        (0x65, False, "POLL", 0, ""), (0x65, False, "ID", 0, "00"), (0x65, True, "RAW", 3, "00011a005a0c0f40")]
    assert p.stats["frames"] == 3 and p.stats["crc_errors"] == 0
    assert p.stats["noise_bytes"] == 11 and p.stats["marks"] == 1
    assert [f.raw for f in frames] == [OSDP_POLL, OSDP_ID, OSDP_RAW26]


def test_osdp_raw_vector_payload_and_its_parity():
    frame = FrameParser().feed(OSDP_RAW26)[0]
    raw = parse_raw(frame)
    assert (raw.reader, raw.format, raw.nbits, raw.data) == (0, 1, 26, bytes.fromhex("5A0C0F40"))
    bits = bits_from_bytes(raw.data, raw.nbits)
    assert bits == "01011010000011000000111101"
    # The issue's RAW vector frames correctly (CRC 0xBB56) but its 26 bits fail both H10301 parity checks
    # (5 ones in the even half, 6 in the odd half): a driver must reject it, not report facility 180 card 6174.
    with pytest.raises(WiegandError) as exc:
        decode_bits(bits)
    assert exc.value.reason == "parity"


def test_osdp_parser_counts_bad_input_per_kind():
    now = [0.0]
    p = FrameParser(expect_address=0x65, expect_reply=True, monotonic=lambda: now[0])
    bad_crc = bytearray(OSDP_RAW26)
    bad_crc[9] ^= 0x01
    other = build_frame(0x05, 0x40, reply=True)  # ACK from PD 5
    assert p.feed(bytes(bad_crc)) == []
    assert p.feed(other) == []
    assert p.feed(OSDP_POLL) == []  # a command, not a reply: not from our PD
    assert p.feed(OSDP_RAW26[:9]) == []  # truncated ...
    now[0] += 1.0
    p.idle()  # ... and the line went quiet
    assert len(p.feed(OSDP_RAW26)) == 1
    assert p.feed(b"\x53\xe5\x03\x00\x04") == []  # length field below the minimum
    s = p.stats
    assert s["crc_errors"] == 1 and s["wrong_address"] == 2 and s["short_frames"] == 1 and s["bad_length"] == 1
    assert s["frames"] == 1


def test_osdp_keypad_payload():
    f = FrameParser().feed(build_frame(1, 0x53, bytes([0, 5, 0x31, 0x32, 0x33, 0x34, 0x0D]), reply=True))[0]
    assert parse_keypad(f) == (0, b"1234\r")


# ---- Wiegand -----------------------------------------------------------------------------------------
def test_wiegand26_issue_vector():
    assert encode(90, 324) == W26_90_324
    c = decode_bits(W26_90_324)
    assert (c.format.name, c.facility, c.card, c.credential) == ("wiegand26", 90, 324, "90:324")
    assert bits_to_bytes(W26_90_324) == bytes.fromhex("2D00A200")
    assert bits_from_bytes(bytes.fromhex("2D00A200"), 26) == W26_90_324


@pytest.mark.parametrize("fmt,facility,card", [("wiegand26", 0, 0), ("wiegand26", 255, 65535),
                                               ("wiegand34", 1234, 56789), ("wiegand34", 65535, 1)])
def test_wiegand_round_trip_and_every_single_bit_error_is_caught(fmt, facility, card):
    bits = encode(facility, card, fmt)
    assert len(bits) == {"wiegand26": 26, "wiegand34": 34}[fmt]
    c = decode_bits(bits, fmt)
    assert (c.facility, c.card) == (facility, card)
    for i in range(len(bits)):
        flipped = bits[:i] + ("1" if bits[i] == "0" else "0") + bits[i + 1:]
        with pytest.raises(WiegandError) as exc:
            decode_bits(flipped)
        assert exc.value.reason == "parity"


def test_wiegand_rejects_other_lengths_and_junk():
    for bad, reason in [("0" * 25, "bad_length"), ("", "bad_bits"), ("0102", "bad_bits")]:
        with pytest.raises(WiegandError) as exc:
            decode_bits(bad)
        assert exc.value.reason == reason
    with pytest.raises(WiegandError):
        decode_bits(W26_90_324, "wiegand34")


# ---- Wiegand-to-serial converter profiles --------------------------------------------------------------
@pytest.mark.parametrize("profile", ["ascii_bits", "ascii_hex", "binary"])
def test_converter_profiles_round_trip_through_noise(profile):
    p = ConverterParser(profile)
    w34 = encode(1234, 56789, "wiegand34")
    stream = b"\x00\xfe" + encode_frame(W26_90_324, profile) + b"zz" + encode_frame(w34, profile)
    out = []
    for i in range(0, len(stream), 3):
        out += p.feed(stream[i:i + 3])
    assert out == [W26_90_324, w34]
    assert p.stats["frames"] == 2


def test_converter_ascii_hex_forms():
    p = ConverterParser("ascii_hex")
    assert encode_frame(W26_90_324, "ascii_hex") == b"0B40288\r\n"
    assert p.feed(b"0B40288\r\n26:0B40288\n\x020B40288\x03") == [W26_90_324] * 3
    assert p.feed(b"XYZ\r\n12345\r\n") == []
    assert p.stats["bad_frames"] == 2


def test_converter_binary_checksum_and_resync():
    p = ConverterParser("binary")
    good = encode_frame(W26_90_324, "binary")
    assert good == bytes([0x02, 26, 0x2D, 0x00, 0xA2, 0x00, 26 ^ 0x2D ^ 0xA2, 0x03])
    bad = bytearray(good)
    bad[3] ^= 0x10
    assert p.feed(bytes(bad) + good) == [W26_90_324]
    assert p.stats["checksum_errors"] == 1
