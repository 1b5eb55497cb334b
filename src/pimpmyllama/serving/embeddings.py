"""`/v1/embeddings`: vectors from the bundled embedder, or from a knowledge base's
(`model` names the base: its texts and a client's queries then share one space).
Vectors are L2-normalised, as the knowledge bases store them."""

import base64
from typing import Literal

from pydantic import Field

from pimpmyllama.knowledge.bases import knowledge_store
from pimpmyllama.knowledge.embedders import load_embedder
from pimpmyllama.models.defaults import DEFAULT_EMBEDDER
from pimpmyllama.serving.errors import ApiError
from pimpmyllama.serving.schema import _Strict


class EmbeddingRequest(_Strict):
    model: str = Field(min_length=1)
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"  # base64: little-endian float32 (the client's default)


def embedder_for(model: str) -> str:
    """The embedder `model` names: the bundled one by its name, or a knowledge base's."""
    if model == DEFAULT_EMBEDDER:
        return model
    base = knowledge_store().find(model)
    if base is None:
        raise ApiError(404, f"unknown embedding model {model!r}: use {DEFAULT_EMBEDDER} or a knowledge base's name",
                       param="model", code="model_not_found")
    return base.embedder


def _encoded(vector, encoding_format: str):
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def embed(request: EmbeddingRequest) -> dict:
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not texts or not all(t.strip() for t in texts):
        raise ApiError(400, "input: give one or more non-empty texts", param="input", code="invalid_value")
    embedder = load_embedder(embedder_for(request.model))
    vectors = embedder.encode(texts)
    tokens = sum(embedder.count_tokens(t) for t in texts)
    return {"object": "list", "model": request.model,
            "data": [{"object": "embedding", "index": i, "embedding": _encoded(v, request.encoding_format)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
