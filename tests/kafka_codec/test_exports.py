"""The codec's public surface is pinned: the broker builds on these names."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

from millstream.server.kafka import codec

REPO = Path(__file__).resolve().parents[2]
API = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MESSAGES",
    "SUPPORTED_VERSIONS",
    "ZERO_UUID",
    "ApiKey",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "FrameBuffer",
    "FrameError",
    "FrameTooLarge",
    "InvalidFrameSize",
    "KafkaCodecError",
    "RecordData",
    "Request",
    "RequestBody",
    "RequestHeader",
    "ResponseBody",
    "UnsupportedApiKey",
    "UnsupportedVersion",
    "api_versions_response",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "expects_response",
]


def test_all_is_sorted_unique_and_complete() -> None:
    exported = codec.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(codec, name), name
    assert set(API) <= set(exported)
    generated = set()
    for info in pkgutil.iter_modules(codec.__path__):
        if info.name.startswith("_msg_"):
            generated |= set(importlib.import_module(f"{codec.__name__}.{info.name}").__all__)
    assert set(exported) == set(API) | generated


def test_every_api_has_a_request_and_a_response_class() -> None:
    assert set(codec.MESSAGES) == set(codec.SUPPORTED_VERSIONS)
    for key, (request, response) in codec.MESSAGES.items():
        assert request.API_KEY == response.API_KEY == key
        assert request.__name__.removesuffix("Request") == response.__name__.removesuffix(
            "Response"
        )


@pytest.mark.parametrize("module", ["_frames"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"{codec.__name__}.{module}"))
    assert result.attempted > 0
    assert result.failed == 0


def test_generated_messages_are_what_the_generator_writes() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        generator = importlib.import_module("gen_kafka_messages")
    finally:
        sys.path.remove(str(REPO / "tools"))
    import kafka.protocol.schemas

    schemas = Path(kafka.protocol.schemas.__file__).parent / "resources"
    for module, text in generator.generate(schemas).items():
        checked_in = (REPO / "src/millstream/server/kafka/codec" / f"{module}.py").read_text()
        assert checked_in == text, f"{module}.py differs: run tools/gen_kafka_messages.py"
