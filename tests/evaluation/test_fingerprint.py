"""The cache key: it changes when what the answers depend on changes (a knowledge
base's contents, an adapter file, the build), and not otherwise."""

import numpy as np

from pimpmyllama.evaluation.fingerprint import variant_fingerprint
from pimpmyllama.prompting.build import Build


def _put(store, kb, source: str, content_hash: str):
    from pimpmyllama.knowledge.chunking import Chunk

    store.put_document(kb, source, content_hash, None, 10, [Chunk(0, f"text of {source}", None, None, 3)],
                       np.ones((1, 4), dtype=np.float32))


def test_a_knowledge_base_change_changes_the_key(stored_tiny):
    from pimpmyllama.knowledge.store import KnowledgeStore
    from pimpmyllama.storage.db import open_database

    store = KnowledgeStore(open_database())
    town, other = store.create("town", "fake", 4, 200, 40), store.create("other", "fake", 4, 200, 40)
    _put(store, town, "/docs/poste.txt", "a" * 64)
    rag = Build.model_validate({"from": "tiny", "knowledge": ["town"]})
    plain = Build.model_validate({"from": "tiny"})
    before, before_plain = variant_fingerprint(rag), variant_fingerprint(plain)
    _put(store, other, "/docs/elsewhere.txt", "b" * 64)  # another base: no change
    _put(store, town, "/docs/poste.txt", "a" * 64)  # the same document again: unchanged
    assert variant_fingerprint(rag) == before
    _put(store, town, "/docs/poste.txt", "c" * 64)  # the document's contents changed
    changed = variant_fingerprint(rag)
    assert changed != before
    _put(store, town, "/docs/piscine.txt", "d" * 64)  # a document added
    assert variant_fingerprint(rag) not in (before, changed)
    assert variant_fingerprint(plain) == before_plain  # a variant without knowledge never moves


def test_an_adapter_file_change_changes_the_key(store_world):
    from pimpmyllama.models.adapters import AdapterStore

    tuned = Build.model_validate({"from": "tiny", "adapter": "form"})
    plain = Build.model_validate({"from": "tiny"})
    key, plain_key = variant_fingerprint(tuned), variant_fingerprint(plain)
    assert key != plain_key and variant_fingerprint(tuned) == key
    weights = next(AdapterStore().folder("form").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert variant_fingerprint(tuned) != key
    assert variant_fingerprint(plain) == plain_key


def test_the_build_and_the_model_are_in_the_key(store_world):
    base = {"from": "tiny", "system": "Be brief."}
    key = variant_fingerprint(Build.model_validate(base))
    assert variant_fingerprint(Build.model_validate(dict(base))) == key
    assert variant_fingerprint(Build.model_validate({**base, "system": "Be long."})) != key
    assert variant_fingerprint(Build.model_validate({**base, "parameters": {"temperature": 0.5}})) != key
    assert variant_fingerprint(Build.model_validate({**base, "from": "tuned"})) != key
