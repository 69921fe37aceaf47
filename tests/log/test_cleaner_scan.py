"""The cleaner's record loops (log/cleaner_scan.py): the C module and the Python
fallback agree with each other and with the records codec on random batches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kbroker.log import cleaner_scan
from kbroker.log.offset_map import ENTRY_BYTES, OffsetMap, key_digest
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    CorruptRecordBatch,
    Record,
    RecordBatchView,
    build_record_batch,
    decode_records,
)

IMPLEMENTATIONS = [("python", cleaner_scan._PythonScanner())]
if cleaner_scan.NATIVE:
    IMPLEMENTATIONS.append(("c", cleaner_scan.SCANNER))

records_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=40)),
        st.one_of(st.none(), st.binary(max_size=300)),
        st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=2),
        st.integers(min_value=-(2**40), max_value=2**40),
    ),
    min_size=1,
    max_size=30,
)


def _batch(items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]]) -> RecordBatchView:
    base_ts = items[0][3]
    records = [
        Record(i * 3, ts - base_ts, key, value, headers, 0) for i, (key, value, headers, ts) in enumerate(items)
    ]
    return RecordBatchView(build_record_batch(records, base_offset=1000, base_timestamp=base_ts))


def test_the_c_loops_are_built():
    """CI builds the extension (setup.py); the Python loops are the fallback only."""
    assert cleaner_scan.NATIVE


@pytest.mark.parametrize("name,impl", IMPLEMENTATIONS)
@settings(max_examples=150, deadline=None)
@given(items=records_strategy, data=st.data())
def test_scan_keys_matches_the_codec(name, impl, items, data):
    view = _batch(items)
    section = view.buffer()[BATCH_HEADER_SIZE:]
    decoded = decode_records(view)
    keys = [key_digest(r.key) for r in decoded if r.key is not None]
    # some keys have a later (or earlier) offset in the map, some are absent
    latest = {k: data.draw(st.integers(min_value=990, max_value=1200)) for k in keys if data.draw(st.booleans())}
    offsets, digests, tombstones, keep = impl.scan_keys(section, view.record_count, view.base_offset, key_digest, latest)
    assert offsets == [view.base_offset + r.offset_delta for r in decoded]
    assert digests == [None if r.key is None else key_digest(r.key) for r in decoded]
    assert list(tombstones) == [int(r.value is None) for r in decoded]
    assert list(keep) == [
        int(d is not None and latest.get(d, -1) <= o) for d, o in zip(digests, offsets)
    ]
    assert impl.scan_keys(section, view.record_count, view.base_offset, key_digest, None)[3] == b""


@pytest.mark.parametrize("name,impl", IMPLEMENTATIONS)
@settings(max_examples=150, deadline=None)
@given(items=records_strategy, data=st.data())
def test_filter_records_matches_reencoding(name, impl, items, data):
    view = _batch(items)
    keep = bytes(data.draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items))))
    new_base = data.draw(st.one_of(st.none(), st.integers(min_value=-(2**40), max_value=2**40)))
    section = view.buffer()[BATCH_HEADER_SIZE:]
    out, base_ts, max_ts = impl.filter_records(section, view.record_count, keep, view.base_timestamp, new_base)
    decoded = decode_records(view)
    kept = [r for r, k in zip(decoded, keep) if k]
    absolute = [view.base_timestamp + r.timestamp_delta for r in kept]
    if not kept:
        assert (out, max_ts) == (b"", -1)
        assert base_ts == (new_base if new_base is not None else -1)
        return
    expected_base = absolute[0] if new_base is None else new_base
    assert (base_ts, max_ts) == (expected_base, max(absolute))
    rebuilt = [
        Record(r.offset_delta, ts - expected_base, r.key, r.value, r.headers, r.attributes)
        for r, ts in zip(kept, absolute)
    ]
    expected = build_record_batch(rebuilt, base_timestamp=expected_base)[BATCH_HEADER_SIZE:]
    assert out == bytes(expected)


@pytest.mark.parametrize("name,impl", IMPLEMENTATIONS)
@settings(max_examples=100, deadline=None)
@given(items=records_strategy, cut=st.integers(min_value=1, max_value=50))
def test_truncated_or_padded_sections_are_corrupt(name, impl, items, cut):
    view = _batch(items)
    section = bytes(view.buffer()[BATCH_HEADER_SIZE:])
    for bad in (section[: max(0, len(section) - cut)], section + b"\x00" * cut):
        with pytest.raises(CorruptRecordBatch):
            impl.scan_keys(bad, view.record_count, 0, key_digest, {})
        with pytest.raises(CorruptRecordBatch):
            impl.filter_records(bad, view.record_count, b"\x01" * view.record_count, 0, None)
    with pytest.raises(CorruptRecordBatch):
        impl.scan_keys(section, view.record_count + 1, 0, key_digest, None)


def _outcome(call):
    """The result of ``call()``, or "corrupt" if it raised CorruptRecordBatch (any other
    exception fails the test)."""
    try:
        return call()
    except CorruptRecordBatch:
        return "corrupt"


@settings(max_examples=300, deadline=None)
@given(
    items=records_strategy,
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    garbage=st.binary(max_size=200),
    count_delta=st.integers(min_value=-2, max_value=2),
    keep_seed=st.binary(min_size=30, max_size=30),
)
def test_hostile_sections_are_corrupt_or_agree(items, flips, garbage, count_delta, keep_seed):
    """Malformed record sections (bytes overwritten, random garbage, a wrong record
    count) make both loops raise CorruptRecordBatch or return, never crash or read past
    the section -- and the C module and the Python fallback give the same answer."""
    view = _batch(items)
    section = bytearray(view.buffer()[BATCH_HEADER_SIZE:])
    for pos, byte in flips:
        section[pos % len(section)] = byte
    count = max(0, view.record_count + count_delta)
    keep = bytes(b & 1 for b in keep_seed[:count]) + b"\x01" * max(0, count - 30)
    for data in (bytes(section), garbage, bytes(section) + garbage):
        results = [
            (
                _outcome(lambda impl=impl, data=data: impl.scan_keys(data, count, 7, key_digest, {})),
                _outcome(lambda impl=impl, data=data: impl.filter_records(data, count, keep, 0, None)),
            )
            for _, impl in IMPLEMENTATIONS
        ]
        assert all(r == results[0] for r in results)
        stores = []
        for native in MAPS:
            m = OffsetMap(1 << 16, native=native)
            m.put(b"\x01", 5)
            mapped = _outcome(lambda m=m, data=data: cleaner_scan.map_records(m, data, count, 3, 0))
            judged = _outcome(lambda m=m, data=data: cleaner_scan.judge(m, data, count, 3))
            stores.append((mapped, judged, len(m), m.get(b"\x01")))
        assert all(s == stores[0] for s in stores)


MAPS = [False] + ([True] if cleaner_scan.NATIVE else [])


@pytest.mark.parametrize("native", MAPS)
@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(records_strategy, min_size=1, max_size=4),
    start=st.integers(min_value=1000, max_value=1100),
)
def test_map_and_judge_match_scan_keys(native, batches, start):
    """map_records / judge on either store give what scan_keys and a dict give."""
    m = OffsetMap(1 << 20, native=native)
    model: dict[bytes, int] = {}
    sections = []
    for items in batches:
        view = _batch(items)
        section = bytes(view.buffer()[BATCH_HEADER_SIZE:])
        sections.append((section, view.record_count))
        assert cleaner_scan.map_records(m, section, view.record_count, 1000, start)
        offsets, digests, _, _ = cleaner_scan.py_scan_keys(section, view.record_count, 1000, key_digest, None)
        for d, o in zip(digests, offsets, strict=True):
            if d is not None and o >= start:
                model[d] = o
    assert len(m) == len(model)
    assert all(m.get(d) == o for d, o in model.items())
    for section, count in sections:
        _, _, tombstones, keep = cleaner_scan.py_scan_keys(section, count, 1000, key_digest, model)
        assert cleaner_scan.judge(m, section, count, 1000) == (keep, tombstones)


@pytest.mark.parametrize("native", MAPS)
def test_a_batch_that_does_not_fit_maps_nothing(native):
    """The map is all or nothing per batch (Kafka stops the round before the batch)."""
    m = OffsetMap(ENTRY_BYTES * 4, load_factor=1.0, native=native)  # 4 keys
    first = _batch([(b"a", b"1", [], 0), (b"b", b"1", [], 0), (b"a", b"2", [], 0)])
    section = bytes(first.buffer()[BATCH_HEADER_SIZE:])
    assert cleaner_scan.map_records(m, section, 3, 0, 0)
    assert (len(m), m.get(b"a"), m.get(b"b")) == (2, 6, 3)
    # b updated, then three new keys: one too many
    items = [(b"b", b"x", [], 0), (b"c", b"x", [], 0), (b"d", b"x", [], 0), (b"e", b"x", [], 0)]
    section = bytes(_batch(items).buffer()[BATCH_HEADER_SIZE:])
    assert not cleaner_scan.map_records(m, section, 4, 100, 0)
    assert (len(m), m.get(b"a"), m.get(b"b"), m.get(b"c")) == (2, 6, 3, -1)
    # a malformed batch raises and leaves the map as it was, even after keys were put
    bad = section[: len(section) - 3]
    with pytest.raises(CorruptRecordBatch):
        cleaner_scan.map_records(m, bad, 4, 100, 0)
    assert (len(m), m.get(b"a"), m.get(b"b"), m.get(b"c")) == (2, 6, 3, -1)
    roomy = OffsetMap(1 << 20, native=native)
    with pytest.raises(CorruptRecordBatch):  # c, d mapped before the bad tail is seen
        cleaner_scan.map_records(roomy, bad, 4, 100, 0)
    assert len(roomy) == 0 and roomy.get(b"c") == -1
    with pytest.raises(CorruptRecordBatch):
        cleaner_scan.judge(roomy, bad, 4, 100)
