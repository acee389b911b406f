"""Fuzz every access-control parser: >= 100,000 random and bit-flipped frames each (fixed seed), plus a
hypothesis property per parser. The only allowed outcomes are a result or the parser's own named rejection."""
import datetime as dt
import random

from hypothesis import HealthCheck, given, seed, settings, strategies as st

from drivers.access import uhppote_codec as codec
from drivers.access.converter import ConverterParser, encode_frame
from drivers.access.osdp_frame import FrameParser, build_frame, parse_keypad, parse_raw
from drivers.access.wiegand import WiegandError, decode_bits, encode
from simulators.access.uhppote_sim import SimRecord, status_packet

N = 100_000
SEED = 20261201


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """1-8 bit flips (70 %), truncation, a stray inserted byte or one overwritten byte."""
    b = bytearray(frame)
    r = rng.getrandbits(32)
    op = r & 0xF
    size = len(b)
    if op < 11 or size < 2:
        for k in range(1 + (r >> 4 & 7)):
            if size:
                i = rng.getrandbits(16) % (size * 8)
                b[i >> 3] ^= 1 << (i & 7)
    elif op < 13:
        del b[(r >> 8) % size:]
    elif op < 15:
        b.insert((r >> 8) % (size + 1), r >> 24)
    else:
        b[(r >> 8) % size] = r >> 24
    return bytes(b)


def frames(rng: random.Random, seeds: list[bytes], n: int, max_random: int = 80):
    """Half pure random bytes, half mutations of valid seed frames."""
    k = len(seeds)
    for i in range(n):
        if i & 1:
            yield rng.randbytes(rng.getrandbits(8) % (max_random + 1))
        else:
            yield mutate(rng, seeds[rng.getrandbits(8) % k])


# ---- UHPPOTE --------------------------------------------------------------------------------------------
def _uhppote_seeds() -> list[bytes]:
    t = dt.datetime(2022, 8, 23, 9, 47, 6)
    out = [status_packet(405419896, SimRecord(78, 2, True, 3, 1, 8165537, t, 44))]
    for reason in (1, 6, 20, 23, 24, 37, 38, 39, 44):
        out.append(status_packet(405419896, SimRecord(1000 + reason, 1 + reason % 3, reason % 2 == 0, 1 + reason % 4,
                                                      1 + reason % 2, 123456, t, reason),
                                 doors_open=(True, False, True, False), system_time=t, sequence_no=reason))
    return out


def _uhppote_one(pkt: bytes) -> str:
    try:
        pushed = codec.parse_pushed(pkt)
    except codec.PacketError as exc:
        return exc.reason
    if pushed.record is not None:
        m = codec.map_record(pushed.record, {1: "a"})
        if m is not None:
            from edge.events.kinds import validate_payload
            validate_payload(m.kind, m.payload)  # what the driver's make_event does with it
    return "ok"


def _uhppote_random(rng: random.Random) -> bytes:
    r = rng.getrandbits(8)
    if r & 7:
        return rng.randbytes(r % 81)  # mostly the wrong size: the cheap first line of defence
    b = bytearray(rng.randbytes(64))  # 1 in 8: random content behind a valid header reaches the decoder
    b[0], b[1] = (0x17, 0x19)[r >> 7], 0x20
    return bytes(b)


def test_fuzz_uhppote_packets():
    rng = random.Random(SEED)
    seeds = _uhppote_seeds()
    outcomes: dict[str, int] = {}
    errors = []
    for i in range(N):
        # 60 % random, 40 % bit-flipped/truncated/extended valid packets (uhppoted's strptime-based BCD
        # decoding costs ~65 us a packet, so the mix keeps this test at a few seconds)
        pkt = _uhppote_random(rng) if i % 5 < 3 else mutate(rng, seeds[i % len(seeds)])
        try:
            r = _uhppote_one(pkt)
        except Exception as exc:  # anything else escaping is a bug
            errors.append((pkt.hex(), repr(exc)))
            continue
        outcomes[r] = outcomes.get(r, 0) + 1
    assert errors == [], errors[:5]
    assert sum(outcomes.values()) == N
    assert outcomes["ok"] > N // 5 and outcomes["bad_size"] > 1000 and outcomes["bad_header"] > 1000


@seed(SEED)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=80))
def test_hypothesis_uhppote(data):
    _uhppote_one(data)
    _uhppote_one(b"\x17\x20" + data[:62].ljust(62, b"\x00"))


# ---- OSDP -----------------------------------------------------------------------------------------------
def _osdp_seeds() -> list[bytes]:
    return [
        bytes.fromhex("53 65 08 00 04 60 60 90"), bytes.fromhex("53 65 09 00 04 61 00 D9 7A"),
        bytes.fromhex("53 E5 10 00 07 50 00 01 1A 00 5A 0C 0F 40 56 BB"),
        build_frame(1, 0x53, bytes([0, 5]) + b"1234\r", reply=True, seq=2),
        build_frame(1, 0x48, b"\x01\x00", reply=True, seq=1),
        build_frame(1, 0x40, reply=True, use_crc=False),
        build_frame(1, 0x45, bytes(12), reply=True, scb=b"\x02\x15", mac=b"\x01\x02\x03\x04"),
        build_frame(1, 0x50, b"\x00\x01\x22\x00" + bytes(5), reply=True, scb=b"\x02\x17", mac=bytes(4)),
    ]


def test_fuzz_osdp_frames():
    rng = random.Random(SEED)
    seeds = _osdp_seeds()
    t_alone, t_stream = [0.0], [0.0]
    alone = FrameParser(monotonic=lambda: t_alone[0])  # each frame on its own, after an idle line
    stream = FrameParser(expect_address=1, expect_reply=True, monotonic=lambda: t_stream[0])  # one noisy line
    n = 0
    for data in frames(rng, seeds, N, 40):
        n += 1
        t_alone[0] += 1.0
        for f in alone.feed(data):
            parse_raw(f)
            parse_keypad(f)
            assert f.raw in data
        t_stream[0] += 1.0 if n % 64 == 0 else 0.001  # the line mostly has no idle gaps
        cut = rng.getrandbits(6) % (len(data) + 1)
        for part in (data[:cut], data[cut:]):
            for f in stream.feed(part):
                parse_raw(f)
                parse_keypad(f)
    assert n == N
    assert alone.stats["frames"] > 500 and alone.stats["crc_errors"] > 10_000
    assert stream.stats["crc_errors"] > 1000 and stream.stats["noise_bytes"] > 10_000
    # after all that garbage the stream parser still reads a clean frame
    t_stream[0] += 1.0
    stream.idle()
    assert [f.name for f in stream.feed(build_frame(1, 0x40, reply=True))] == ["ACK"]


@seed(SEED)
@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6), st.integers(0, 6))
def test_hypothesis_osdp(chunks, which):
    p = FrameParser(expect_address=1, expect_reply=True)
    for c in chunks:
        for f in p.feed(c):
            parse_raw(f)
    good = _osdp_seeds()[3]
    p2 = FrameParser(expect_address=1, expect_reply=True)
    p2.feed(b"".join(chunks))
    p2.idle()
    assert good in b"".join(f.raw for f in FrameParser().feed(b"".join(chunks[:which]) + good))


# ---- Wiegand-to-serial converter profiles ----------------------------------------------------------------
def test_fuzz_converter_profiles():
    """One ConverterParser, N frames spread over its three profiles (each profile is its own stream)."""
    rng = random.Random(SEED)
    w26, w34 = encode(90, 324), encode(1234, 56789, "wiegand34")
    profiles = ("ascii_hex", "ascii_bits", "binary")
    parsers = {p: ConverterParser(p) for p in profiles}
    seeds = {p: [encode_frame(w26, p), encode_frame(w34, p), encode_frame(w26, "ascii_hex", with_count=True)]
             for p in profiles}
    decoded = dict.fromkeys(profiles, 0)
    n = 0
    gen = {p: frames(rng, seeds[p], N, 24) for p in profiles}
    for i in range(N):
        prof = profiles[i % 3]
        p = parsers[prof]
        data = next(gen[prof])
        n += 1
        out = p.feed(data)
        if i % 50 == 0:
            out += p.flush()
        for bits in out:
            try:
                decode_bits(bits)
                decoded[prof] += 1
            except WiegandError:
                pass
    assert n == N
    for prof, p in parsers.items():
        assert decoded[prof] > 100 and p.stats["noise_bytes"] > 1000, (prof, decoded, p.stats)
        p.flush()
        assert p.feed(encode_frame(w26, prof)) == [w26]  # still in sync


@seed(SEED)
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["ascii_hex", "ascii_bits", "binary"]), st.binary(max_size=64))
def test_hypothesis_converter(profile, data):
    p = ConverterParser(profile)
    for bits in p.feed(data) + p.flush():
        try:
            decode_bits(bits)
        except WiegandError:
            pass


# ---- Wiegand bits --------------------------------------------------------------------------------------
def test_fuzz_wiegand_bits():
    rng = random.Random(SEED)
    valid = [encode(rng.randrange(256), rng.randrange(65536)) for _ in range(50)] + \
            [encode(rng.randrange(65536), rng.randrange(65536), "wiegand34") for _ in range(50)]
    ok = bad = 0
    for i in range(N):
        if i & 1:
            n = (26, 34, rng.getrandbits(8) % 41)[i % 3]
            bits = format(rng.getrandbits(n), f"0{n}b") if n else ""
        else:
            v = valid[rng.getrandbits(8) % len(valid)]
            x = int(v, 2)
            for _ in range(1 + rng.getrandbits(2) % 3):
                x ^= 1 << (rng.getrandbits(8) % len(v))
            bits = format(x, f"0{len(v)}b")
        try:
            decode_bits(bits)
            ok += 1
        except WiegandError:
            bad += 1
    assert ok + bad == N and ok > 10_000 and bad > 40_000


@seed(SEED)
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 65535), st.integers(0, 25))
def test_hypothesis_wiegand_single_flip_always_caught(facility, card, pos):
    bits = encode(facility, card)
    assert decode_bits(bits).credential == f"{facility}:{card}"
    flipped = bits[:pos] + ("1" if bits[pos] == "0" else "0") + bits[pos + 1:]
    try:
        decode_bits(flipped)
    except WiegandError as exc:
        assert exc.reason == "parity"
    else:
        raise AssertionError("a single flipped bit passed the parity check")
