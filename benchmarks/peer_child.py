"""One peer library (LiteLLM or any-llm) driven against a vendor fake, in the peers venv.

Started by ``benchmarks/peers.py`` with the peers venv's python (never the project's):

    python -m benchmarks.peer_child serve <peer> <config json>       # timing worker
    python -m benchmarks.peer_child first-call <peer> <config json>  # prints seconds
    python -m benchmarks.peer_child import <peer>                    # import only
    python -m benchmarks.peer_child bare                             # guard only

The worker answers one JSON line on stdout per JSON command line on stdin. Before any peer
is imported, a guard refuses every socket connect and name lookup that is not loopback,
so a peer that phones home (a cost map, telemetry, cloud metadata) fails loudly instead of
leaking traffic. Only the standard library is imported at module level: this file must not
import llmgate, the tests, or the project's SDKs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

MESSAGES = [{"role": "user", "content": "Hello there"}]
EMBED_INPUTS = ["alpha", "beta"]
PEER_MODULES = {"litellm": "litellm", "any-llm": "any_llm"}
PEER_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
VERSION_PACKAGES = [
    "litellm",
    "any-llm-sdk",
    "openai",
    "anthropic",
    "google-genai",
    "mistralai",
    "cohere",
    "boto3",
    "ollama",
    "httpx",
    "aiohttp",
    "pydantic",
]

BLOCKED: list[str] = []


# --- the loopback guard ---------------------------------------------------------------------


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in ("localhost", "localhost.", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what: str, host: Any) -> None:
    message = f"peer benchmark guard: refused {what} to non-loopback host {host!r}"
    BLOCKED.append(message)
    print(message, file=sys.stderr, flush=True)
    raise PermissionError(message)


def install_guard() -> None:
    """Refuse name lookups and connections to anything but 127.0.0.0/8, ::1 and localhost."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            _refuse("name lookup", host)
        return real_getaddrinfo(host, *args, **kwargs)

    def target(address: Any) -> Any:
        return address[0] if isinstance(address, tuple) else None  # AF_UNIX paths stay local

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(target(address)):
            _refuse("connect", target(address))
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(target(address)):
            _refuse("connect", target(address))
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        if not _is_loopback(target(args[-1])):
            _refuse("sendto", target(args[-1]))
        return real_sendto(self, data, *args)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    os.environ.update(PEER_ENV)


# --- the peers ------------------------------------------------------------------------------


class Unsupported(Exception):
    """This peer cannot do this operation against this vendor's fake (the message says why)."""


class Peer:
    """The calls a benchmark times: a completion, a full stream, an embedding, an async call."""

    def call(self) -> Any:
        raise NotImplementedError

    def stream(self) -> int:
        raise NotImplementedError

    def embed(self) -> Any:
        raise NotImplementedError

    def async_caller(self) -> Callable[[], Awaitable[Any]]:
        """A factory of async calls, made inside the running event loop."""
        raise NotImplementedError


class LiteLLMPeer(Peer):
    """LiteLLM's module-level functions, as its documentation uses them."""

    def __init__(self, config: dict[str, Any]) -> None:
        import litellm

        litellm.telemetry = False
        litellm.success_callback = []
        litellm.failure_callback = []
        litellm.callbacks = []
        litellm.suppress_debug_info = True
        litellm.disable_hf_tokenizer_download = True
        self.litellm = litellm
        vendor, options = config["vendor"], config["options"]
        url = options.get("base_url")
        model, embedding_model = config["model"], config.get("embedding_model")
        common: dict[str, Any] = {"num_retries": 0}
        embed: dict[str, Any] | None = None
        stream_extra: dict[str, Any] = {}
        if vendor == "openai":
            common |= {"api_base": url, "api_key": options["api_key"]}
            self.model = f"openai/{model}"
            stream_extra = {"stream_options": {"include_usage": True}}
            embed = {"model": f"openai/{embedding_model}", "api_base": url}
            embed["api_key"] = options["api_key"]
        elif vendor == "anthropic":
            # The fake (like api.anthropic.com for the 2.x SDK) takes a bearer token; LiteLLM
            # sends x-api-key, so the same key also goes as a bearer header.
            common |= {
                "api_base": url,
                "api_key": options["api_key"],
                "max_tokens": 1024,
                "extra_headers": {"Authorization": f"Bearer {options['api_key']}"},
            }
            self.model = f"anthropic/{model}"
        elif vendor == "gemini":
            common |= {"api_base": f"{url}/v1beta", "api_key": options["api_key"]}
            self.model = f"gemini/{model}"
            embed = {
                "model": f"gemini/{embedding_model}",
                "api_base": f"{url}/v1beta",
                "api_key": options["api_key"],
            }
        elif vendor == "mistral":
            common |= {"api_base": f"{url}/v1", "api_key": options["api_key"]}
            self.model = f"mistral/{model}"
            embed = {
                "model": f"mistral/{embedding_model}",
                "api_base": f"{url}/v1",
                "api_key": options["api_key"],
            }
        elif vendor == "cohere":
            common |= {"api_base": f"{url}/v2/chat", "api_key": options["api_key"]}
            self.model = f"cohere_chat/{model}"
            embed = {
                "model": f"cohere/{embedding_model}",
                "api_base": f"{url}/v2/embed",
                "api_key": options["api_key"],
                "input_type": "search_document",
            }
        elif vendor == "bedrock":
            aws = {
                "aws_bedrock_runtime_endpoint": url,
                "aws_region_name": options["region"],
                "aws_access_key_id": options["aws_access_key_id"],
                "aws_secret_access_key": options["aws_secret_access_key"],
            }
            common |= aws
            self.model = f"bedrock/converse/{model}"
            embed = {"model": f"bedrock/{embedding_model}", **aws}
        elif vendor == "ollama":
            common |= {"api_base": url}
            self.model = f"ollama_chat/{model}"
            embed = {"model": f"ollama/{embedding_model}", "api_base": url}
        else:
            raise Unsupported(f"no LiteLLM route wired for {vendor}")
        self.common = common
        self.stream_extra = stream_extra
        self.embed_kwargs = embed if embedding_model else None

    def call(self) -> Any:
        response = self.litellm.completion(model=self.model, messages=MESSAGES, **self.common)
        return response.choices[0].message.content

    def stream(self) -> int:
        pieces = 0
        for chunk in self.litellm.completion(
            model=self.model, messages=MESSAGES, stream=True, **self.common, **self.stream_extra
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
        return pieces

    def embed(self) -> Any:
        if self.embed_kwargs is None:
            raise Unsupported("no embedding model for this vendor")
        return self.litellm.embedding(input=EMBED_INPUTS, **self.embed_kwargs).data

    def async_caller(self) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            response = await self.litellm.acompletion(
                model=self.model, messages=MESSAGES, **self.common
            )
            return response.choices[0].message.content

        return call


class AnyLLMPeer(Peer):
    """any-llm's reusable client: one ``AnyLLM.create(...)`` for all calls.

    (Its module-level ``completion()`` builds a new provider client on every call.)
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from any_llm import AnyLLM

        self.AnyLLM = AnyLLM
        vendor, options = config["vendor"], config["options"]
        url = options.get("base_url")
        self.model, self.embedding_model = config["model"], config.get("embedding_model")
        self.extra: dict[str, Any] = {}
        self.stream_extra: dict[str, Any] = {}
        create: dict[str, Any]
        if vendor == "openai":
            create = {"api_key": options["api_key"], "api_base": url, "max_retries": 0}
            self.stream_extra = {"stream_options": {"include_usage": True}}
        elif vendor == "anthropic":
            # any-llm pins the anthropic SDK below 1.0, whose client sends x-api-key; the fake
            # takes a bearer token, which that SDK sends for ``auth_token``.
            create = {
                "api_key": options["api_key"],
                "auth_token": options["api_key"],
                "api_base": url,
                "max_retries": 0,
            }
            self.extra = {"max_tokens": 1024}
        elif vendor in ("gemini", "mistral"):
            create = {"api_key": options["api_key"], "api_base": url}
        elif vendor == "cohere":
            # any-llm's Cohere provider ignores api_base; the client argument base_url works.
            create = {"api_key": options["api_key"], "base_url": url, "max_retries": 0}
        elif vendor == "bedrock":
            create = {
                "api_base": url,
                "region_name": options["region"],
                "aws_access_key_id": options["aws_access_key_id"],
                "aws_secret_access_key": options["aws_secret_access_key"],
            }
        elif vendor == "ollama":
            create = {"api_base": url}
        else:
            raise Unsupported(f"no any-llm provider wired for {vendor}")
        self.provider = vendor
        self.create = create
        self.llm = AnyLLM.create(self.provider, **create)

    def call(self) -> Any:
        response = self.llm.completion(model=self.model, messages=MESSAGES, **self.extra)
        return response.choices[0].message.content

    def stream(self) -> int:
        pieces = 0
        for chunk in self.llm.completion(
            model=self.model, messages=MESSAGES, stream=True, **self.extra, **self.stream_extra
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
        return pieces

    def embed(self) -> Any:
        if self.embedding_model is None:
            raise Unsupported("no embedding model for this vendor")
        # The sync form of aembedding; any_llm.embedding() is this on a fresh client per call.
        return self.llm._embedding(self.embedding_model, EMBED_INPUTS).data

    def async_caller(self) -> Callable[[], Awaitable[Any]]:
        # The sync client lives on any-llm's own runner loop; async callers get a client of
        # their own, made in their loop (as the raw SDK callers do).
        llm = self.AnyLLM.create(self.provider, **self.create)

        async def call() -> Any:
            response = await llm.acompletion(model=self.model, messages=MESSAGES, **self.extra)
            return response.choices[0].message.content

        return call


PEERS: dict[str, Callable[[dict[str, Any]], Peer]] = {
    "litellm": LiteLLMPeer,
    "any-llm": AnyLLMPeer,
}


# --- the worker -----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    import importlib.metadata

    found = {}
    for package in VERSION_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).split(" Traceback (most recent call last)")[0]
    return f"{type(exc).__name__}: {text[:240]}"


async def _throughput(make_call: Callable[[], Awaitable[Any]], requests: int, limit: int) -> float:
    gate = asyncio.Semaphore(limit)

    async def one() -> None:
        async with gate:
            await make_call()

    await one()
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.perf_counter() - started)


def _throughput_run(peer: Peer, requests: int, concurrency: int) -> float:
    async def run() -> float:
        return await _throughput(peer.async_caller(), requests, concurrency)

    return asyncio.run(run())


def serve(peer_name: str, config: dict[str, Any]) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever a peer prints must not corrupt the protocol

    def reply(message: dict[str, Any]) -> None:
        message["blocked"] = BLOCKED
        out.write(json.dumps(message) + "\n")
        out.flush()

    try:
        peer = PEERS[peer_name](config)
    except Exception as exc:  # reported to the parent
        reply({"ready": False, "error": _describe(exc), "versions": versions()})
        return 0
    operations: dict[str, Callable[[], Any]] = {
        "call": peer.call,
        "stream": peer.stream,
        "embed": peer.embed,
    }
    reply({"ready": True, "versions": versions()})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "quit":
                break
            if op == "check":
                result = operations[command["kind"]]()
                reply({"ok": True, "pieces": result if command["kind"] == "stream" else None})
            elif op == "time":
                fn = operations[command["kind"]]
                started = time.perf_counter()
                for _ in range(command["n"]):
                    fn()
                reply({"seconds": time.perf_counter() - started})
            elif op == "throughput":
                rate = _throughput_run(peer, command["requests"], command["concurrency"])
                reply({"per_second": rate})
            else:
                reply({"error": f"unknown op {op!r}"})
        except Exception as exc:  # the parent leaves the cell empty, says why
            reply({"error": _describe(exc)})
    return 0


def first_call(peer_name: str, config: dict[str, Any]) -> int:
    started = time.perf_counter()
    peer = PEERS[peer_name](config)
    peer.call()
    print(time.perf_counter() - started)
    return 0


def main(argv: list[str]) -> int:
    install_guard()
    mode = argv[0]
    if mode == "serve":
        code = serve(argv[1], json.loads(argv[2]))
    elif mode == "first-call":
        code = first_call(argv[1], json.loads(argv[2]))
    elif mode == "import":
        __import__(PEER_MODULES[argv[1]])
        code = 0
    elif mode == "bare":
        code = 0
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    if BLOCKED:
        print("\n".join(BLOCKED), file=sys.stderr, flush=True)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
