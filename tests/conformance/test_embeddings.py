"""Embeddings: vectors in input order, parameters on the wire, vendors without embeddings."""

from __future__ import annotations

import pytest

from llmgate import LLMGate
from llmgate.exceptions import EmbeddingsNotSupported
from tests.fakes.server import EmbeddingReply, FakeVendor

from .target import Target


def _has_embeddings(target: Target) -> bool:
    spec, model = LLMGate().registry.resolve(target.model)
    return spec.capabilities_for(model).embeddings


def _model(target: Target) -> str:
    if target.embedding_model is None and not _has_embeddings(target):
        pytest.skip(f"{target.id} has no embeddings API (test_embeddings_not_supported)")
    if target.embedding_model is None:
        reason = target.not_applicable.get("embeddings")
        if reason is None:
            pytest.fail(f"{target.id}: no embedding_model and no not_applicable['embeddings']")
        pytest.skip(f"{target.id}: embeddings not applicable: {reason}")
    return target.embedding_model


def test_embed_single(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    model = _model(target)
    fake.push(EmbeddingReply(vectors=[[0.25, -0.5, 1.0]]))
    response = gate.embed(model, "hello")
    assert response.embeddings == [[0.25, -0.5, 1.0]]
    assert response.provider == model.split("/", 1)[0]
    assert target.wire.embedding_inputs(fake.last) == ["hello"]


def test_embed_many_in_order(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    model = _model(target)
    texts = ["alpha", "beta", "gamma"]
    response = gate.embed(model, texts)
    assert len(response.embeddings) == 3
    sent = [t for r in fake.requests for t in target.wire.embedding_inputs(r)]
    assert sorted(sent) == texts  # vendors limited to one text a call get them concurrently
    assert len({tuple(v) for v in response.embeddings}) == 3


async def test_aembed(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    model = _model(target)
    response = await gate.aembed(model, ["one", "two"])
    assert len(response.embeddings) == 2


def test_embeddings_not_supported(fake: FakeVendor, target: Target) -> None:
    if _has_embeddings(target):
        pytest.skip(f"{target.id} has embeddings (covered above)")
    with (
        LLMGate(**target.gate_kwargs(fake.base_url)) as gate,
        pytest.raises(EmbeddingsNotSupported),
    ):
        gate.embed(target.model, "hello")
    assert fake.requests == []


def _find_value(body: object, value: int) -> list[str]:
    """Keys under which ``value`` appears anywhere in a JSON body."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, item in body.items():
            if item == value:
                found.append(str(key))
            found.extend(_find_value(item, value))
    elif isinstance(body, list):
        for item in body:
            found.extend(_find_value(item, value))
    return found


def test_dimensions_on_the_wire(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    model = _model(target)
    gate.embed(model, "hello", dimensions=256)
    keys = _find_value(fake.last.json, 256)
    assert any("dim" in key.lower() for key in keys), f"dimensions not sent: {fake.last.json}"


def test_large_input_is_split(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    import math

    model = _model(target)
    texts = [f"text {i}" for i in range(5)]
    gate.embed(model, texts[:1])
    provider = next(iter(gate._providers.values()))
    provider.embedding_batch_size = 2  # type: ignore[misc]
    vendor_model = model.split("/", 1)[1]
    per_request = provider.embedding_batch_size_for(vendor_model) or len(texts)
    fake.reset()
    response = gate.embed(model, texts)
    assert len(response.embeddings) == 5
    assert len(fake.requests) == math.ceil(len(texts) / per_request)
    assert sorted(t for r in fake.requests for t in target.wire.embedding_inputs(r)) == texts
