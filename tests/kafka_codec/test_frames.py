"""FrameBuffer: any chunking of a byte stream gives the same frames; sizes are checked early."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millstream.server.kafka.codec import (
    FrameBuffer,
    FrameError,
    FrameTooLarge,
    InvalidFrameSize,
    KafkaCodecError,
)


def framed(*bodies: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(body)) + body for body in bodies)


# (stream, frames it holds, bytes left over)
CASES = [
    (b"", [], 0),
    (framed(b""), [b""], 0),
    (framed(b"abc"), [b"abc"], 0),
    (framed(b"abc", b"", b"z" * 60), [b"abc", b"", b"z" * 60], 0),
    (framed(b"abc")[:-1], [], 6),
    (framed(b"abc") + b"\x00\x00", [b"abc"], 2),
    (framed(b"x" * 64), [b"x" * 64], 0),  # exactly the maximum below
]


@pytest.mark.parametrize(("stream", "frames", "left"), CASES)
def test_whole_stream_at_once(stream: bytes, frames: list[bytes], left: int) -> None:
    buffer = FrameBuffer(max_frame_size=64)
    assert buffer.feed(stream) == frames
    assert buffer.buffered == left


@pytest.mark.parametrize(("stream", "frames", "left"), CASES)
def test_one_byte_at_a_time(stream: bytes, frames: list[bytes], left: int) -> None:
    buffer = FrameBuffer(max_frame_size=64)
    got: list[bytes] = []
    for i in range(len(stream)):
        got.extend(buffer.feed(stream[i : i + 1]))
    assert got == frames
    assert buffer.buffered == left


def test_frames_are_bytes_whatever_the_input_type() -> None:
    buffer = FrameBuffer()
    frames = buffer.feed(memoryview(framed(b"ab"))) + buffer.feed(bytearray(framed(b"cd")))
    assert frames == [b"ab", b"cd"]
    assert all(type(frame) is bytes for frame in frames)


@settings(max_examples=200)
@given(
    bodies=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_any_chunking_gives_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    stream = framed(*bodies)
    points = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    buffer = FrameBuffer(max_frame_size=300)
    got: list[bytes] = []
    for start, end in itertools.pairwise(points):
        got.extend(buffer.feed(stream[start:end]))
    assert got == bodies
    assert buffer.buffered == 0


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300) | st.just(3_000_000), max_size=6),
    reads=st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=20).filter(
        lambda reads: sum(reads) > 20_000
    ),
)
def test_reading_into_the_buffer_gives_the_same_frames(sizes: list[int], reads: list[int]) -> None:
    """The ``BufferedProtocol`` way in: a socket writes up to what each read offers (here as
    much as ``reads`` says, in turn) into ``buffer()``; frames of any size come out whole,
    large ones read into place."""
    bodies = [bytes([i]) * size for i, size in enumerate(sizes)]
    stream = memoryview(framed(*bodies))
    buffer = FrameBuffer(max_frame_size=4_000_000)
    got: list[bytes] = []
    for n in itertools.cycle(reads):
        if not stream:
            break
        room = buffer.buffer()
        n = min(n, len(room), len(stream))
        room[:n] = stream[:n]
        stream = stream[n:]
        got.extend(buffer.written(n))
    assert got == bodies
    assert buffer.buffered == 0


def test_an_announced_huge_frame_is_not_allocated_before_its_bytes_arrive() -> None:
    buffer = FrameBuffer()
    assert buffer.feed(struct.pack(">i", 90_000_000) + b"x") == []
    assert len(buffer.buffer()) < 2_000_000  # room grows with what arrives, not with the size


@pytest.mark.parametrize("size", [65, 2**31 - 1])
def test_a_frame_over_the_maximum_is_refused_as_soon_as_its_size_arrives(size: int) -> None:
    buffer = FrameBuffer(max_frame_size=64)
    assert buffer.feed(framed(b"ok")) == [b"ok"]
    with pytest.raises(FrameTooLarge) as caught:
        buffer.feed(struct.pack(">i", size))  # nothing of the body has arrived yet
    assert caught.value.size == size
    assert caught.value.close_connection
    assert buffer.buffered == 0
    with pytest.raises(FrameTooLarge):  # the stream cannot be resynchronised: stays refused
        buffer.feed(framed(b"ok"))


@pytest.mark.parametrize("size", [-1, -(2**31)])
def test_a_negative_size_is_refused(size: int) -> None:
    buffer = FrameBuffer()
    encoded = struct.pack(">i", size)
    for byte in encoded[:3]:
        assert buffer.feed(bytes([byte])) == []
    with pytest.raises(InvalidFrameSize) as caught:
        buffer.feed(encoded[3:])
    assert isinstance(caught.value, FrameError)
    assert isinstance(caught.value, KafkaCodecError)
    assert caught.value.hint


def test_frames_before_a_bad_size_in_the_same_chunk_are_not_returned_but_the_error_is() -> None:
    buffer = FrameBuffer(max_frame_size=8)
    with pytest.raises(FrameTooLarge):
        buffer.feed(framed(b"ok") + struct.pack(">i", 9))


def test_the_maximum_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        FrameBuffer(max_frame_size=-1)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_garbage_only_ever_raises_frame_errors(data: bytes) -> None:
    buffer = FrameBuffer(max_frame_size=100)
    try:
        for i in range(0, len(data), 7):
            for frame in buffer.feed(data[i : i + 7]):
                assert len(frame) <= 100
    except FrameError:
        pass
    assert buffer.buffered <= 100 + 4
