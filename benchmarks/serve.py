"""Serve one vendor fake in its own process, so the benchmark process measures only clients.

    python -m benchmarks.serve openai --chunks 500

prints ``URL <base url>`` once listening, then serves until killed. Every chat request
gets the same reply (``--chunks`` stream pieces when streamed); embedding requests get
vectors. Requests are not kept (a benchmark sends many thousands).
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.conformance.targets import TARGETS
from tests.fakes.server import EmbeddingReply, FakeServer, RecordedRequest, Reply, Script


def reply_for(chunks: int) -> Reply:
    words = " ".join(f"w{i}" for i in range(chunks))
    return Reply(text=words, prompt_tokens=12, completion_tokens=chunks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()
    target = next(t for t in TARGETS if t.id == args.target)
    vendor = target.make_vendor()
    chat = reply_for(args.chunks)
    embedding = EmbeddingReply(dimensions=256)

    def script(request: RecordedRequest) -> Script:
        path = request.path.lower()
        is_embedding = "embed" in path or ("invoke" in path and "converse" not in path)
        return embedding if is_embedding else chat

    vendor.set_default(script)
    original = vendor.respond

    def respond_without_log(request: RecordedRequest):  # type: ignore[no-untyped-def]
        response = original(request)
        vendor.requests.clear()
        return response

    vendor.respond = respond_without_log  # type: ignore[method-assign]
    server = FakeServer(vendor).start()
    print(f"URL {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
