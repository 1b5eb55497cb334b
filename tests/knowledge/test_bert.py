"""The lean BERT encoder gives the bundled embedder's vectors as sentence-transformers does."""

import json

import numpy as np

from pimpmyllama.knowledge.bert import lean_bert
from pimpmyllama.models.defaults import bundled_default_embedder

TEXTS = [
    "Le bureau de poste ouvre à 9h.",
    "  When does the library open on Saturdays?  ",
    "x",
    "The town hall reception desk opens at 8:30am, Monday to Friday. " * 40,  # past 256 tokens: cut
    "",
]


def test_the_lean_encoder_equals_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    folder = bundled_default_embedder()
    lean = lean_bert(folder)
    reference = SentenceTransformer(str(folder), device="cpu")
    expected = reference.encode(TEXTS, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)
    got = lean.encode(TEXTS, batch_size=3)
    assert got.shape == expected.shape == (5, 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 2e-6
    assert lean.max_seq_length == reference.max_seq_length == 256
    assert lean.get_sentence_embedding_dimension() == 384


def test_other_forms_go_to_sentence_transformers(tmp_path):
    folder = bundled_default_embedder()
    for name in ("config.json", "sentence_bert_config.json", "tokenizer.json", "model.safetensors"):
        (tmp_path / name).symlink_to(folder / name)
    (tmp_path / "1_Pooling").mkdir()
    modules = json.loads((folder / "modules.json").read_text())
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "pooling_mode_cls_token": True}))
    assert lean_bert(tmp_path) is None  # CLS pooling: not what it computes
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert lean_bert(tmp_path) is not None
    (tmp_path / "modules.json").write_text(json.dumps(modules[:2]))
    assert lean_bert(tmp_path) is None  # no Normalize step


def test_the_embedder_on_the_cpu_named_explicitly_equals_the_default(monkeypatch):
    from pimpmyllama.knowledge.embedders import Embedder
    from pimpmyllama.models.defaults import DEFAULT_EMBEDDER

    monkeypatch.delenv("PML_DEVICE", raising=False)
    default = Embedder(DEFAULT_EMBEDDER).encode(TEXTS)
    explicit = Embedder(DEFAULT_EMBEDDER, device="cpu").encode(TEXTS)
    assert explicit.shape == (5, 384) and np.array_equal(default, explicit)


def test_every_tensor_of_the_lean_encoder_is_on_its_device():
    import torch

    from device_recorder import record

    meta = torch.device("meta")
    lean = lean_bert(bundled_default_embedder(), meta)
    ids = torch.zeros(2, 7, dtype=torch.long, device=meta)
    mask = torch.ones(2, 7, device=meta)
    recorder = record(lambda: lean._pooled(ids, ids, mask))
    assert recorder.error is None and len(recorder.seen) > 50
    assert recorder.off(meta) == []
