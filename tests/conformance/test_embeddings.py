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
