"""Benchmark the wire codec: Produce decode and Fetch encode carrying 1 MiB of records.

Run: ``python bench/wire_codec.py``.  Prints operations per second and MiB/s (best of
several rounds).  Records are opaque bytes to the codec (zero-copy on decode), so these
figures measure the message structure, not record parsing.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kbroker.wire import codec  # noqa: E402
from kbroker.wire.headers import (  # noqa: E402
    RequestHeader,
    decode_request_header,
    encode_request,
    encode_response,
)
from kbroker.wire.messages.fetch_response import (  # noqa: E402
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic  # noqa: E402
from kbroker.wire.messages.produce_request import (  # noqa: E402
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)

MIB = 1 << 20


def best_rate(fn: Callable[[], object], rounds: int = 5, min_time: float = 0.2) -> float:
    """Best observed calls per second."""
    best = 0.0
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, n / elapsed)
    return best


def produce_frame(partitions: int) -> bytes:
    chunk = b"\x01" * (MIB // partitions)
    req = ProduceRequest(acks=-1, timeout_ms=30000, topic_data=[
        TopicProduceData(name="bench", partition_data=[
            PartitionProduceData(index=i, records=chunk) for i in range(partitions)
        ])
    ])
    header = RequestHeader(request_api_key=0, request_api_version=9, correlation_id=1, client_id="bench")
    return encode_request(header, req)[4:]


def fetch_response(partitions: int) -> FetchResponse:
    chunk = memoryview(b"\x02" * (MIB // partitions))
    return FetchResponse(session_id=0, responses=[
        FetchableTopicResponse(topic="bench", partitions=[
            PartitionData(partition_index=i, high_watermark=1000, last_stable_offset=1000,
                          log_start_offset=0, records=chunk)
            for i in range(partitions)
        ])
    ])


def main() -> None:
    rows = []
    for parts in (1, 64):
        frame = memoryview(produce_frame(parts))

        def decode_produce(frame: memoryview = frame) -> None:
            header, off = decode_request_header(frame)
            codec.decode(ProduceRequest, header.request_api_version, frame[off:])

        rate = best_rate(decode_produce)
        rows.append((f"decode Produce v9 request, 1 MiB records in {parts} partition(s)", rate, rate))
        resp = fetch_response(parts)

        def encode_fetch(resp: FetchResponse = resp) -> None:
            encode_response(1, 1, 12, resp)

        rate = best_rate(encode_fetch)
        rows.append((f"encode Fetch v12 response frame, 1 MiB records in {parts} partition(s)", rate, rate))
    meta = MetadataRequest(topics=[MetadataRequestTopic(name=f"t{i}") for i in range(10)])
    data = codec.encode(meta, 12)
    rows.append(("decode Metadata v12 request (10 topics)", best_rate(lambda: codec.decode(MetadataRequest, 12, data)), None))
    rows.append(("encode Metadata v12 request (10 topics)", best_rate(lambda: codec.encode(meta, 12)), None))
    print(f"CPython {platform.python_version()} on {platform.machine()}")
    print("| operation | ops/s | MiB/s |")
    print("|---|---:|---:|")
    for name, rate, mib in rows:
        print(f"| {name} | {rate:,.0f} | {'' if mib is None else f'{mib:,.0f}'} |")


if __name__ == "__main__":
    main()
