"""Pin the public surface of ``millstream.log``: a change here is an API change."""

import millstream.log


def test_log_exports_are_complete() -> None:
    exported = millstream.log.__all__  # order is ruff's (RUF022)
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(millstream.log, name), name
    assert {"Store", "MemoryStore", "AppendRequest", "ReadResult", "format_offset"} <= set(exported)


def test_offsets_round_trip_and_sort_like_positions() -> None:
    positions = [0, 1, 9, 10, 99, 12345, 9_999_999_999_999_999]
    texts = [millstream.log.format_offset(p) for p in positions]
    assert texts == sorted(texts)
    assert [millstream.log.parse_offset(t) for t in texts] == positions
    assert texts[0] == "0000000000000000_0000000000000000"
    for bad in ["", "-1", "now", "1_1", "0000000000000000_0000000000000001", "abc", "0" * 33]:
        assert millstream.log.parse_offset(bad) is None, bad
