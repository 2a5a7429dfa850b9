"""Write ``schema-v1.db``: a data file of schema version 1, made by the main branch's code.

Run with the version-1 code on the path (``PYTHONPATH=<main checkout>/src python
make_schema_v1.py DIR``); ``test_sqlite_kafka.py`` checks that such a file opens migrated.
"""

import asyncio
import sys

from millstream.log import (
    AppendRequest,
    CreateRequest,
    ForkSpec,
    ProducerClaim,
    SqliteStore,
    StreamConfig,
)
from millstream.log._sqlite_schema import SCHEMA_VERSION


async def main(data_dir: str) -> None:
    assert SCHEMA_VERSION == 1
    s = SqliteStore(data_dir)
    await s.start()
    json = StreamConfig("application/json")
    await s.create("chat", CreateRequest(json, [b'{"n":0}', b'{"n":1}']))
    for i in range(3):
        claim = ProducerClaim("prod", 2, i)
        await s.append("chat", AppendRequest([f'{{"p":{i}}}'.encode()], producer=claim))
    octets = StreamConfig("application/octet-stream")
    await s.create("bytes", CreateRequest(octets, [b"hello", b"world"]))
    await s.create("fork", CreateRequest(StreamConfig(""), [], fork=ForkSpec("bytes", 1, 3)))
    await s.append("fork", AppendRequest([b"!"]))
    await s.create("closed", CreateRequest(StreamConfig("text/plain"), [b"bye"], closed=True))
    await s.create("ttl", CreateRequest(StreamConfig("text/plain", ttl_seconds=86400 * 18250)))
    await s.create("__ds/state", CreateRequest(json, [b"{}"]))
    await s.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
