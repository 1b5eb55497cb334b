"""The lean forward against transformers' own, on tiny random models."""

import pytest
import torch

from pimpmyllama.generation.llama import lean_unsupported_reason
from pimpmyllama.generation.loading import load_backend
from mapped import mapped_file
from tiny import make_tiny_model

IDS = [5, 17, 42, 99, 3, 250, 7, 64, 128, 11, 300, 2]


def hf_logits(folder, ids):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


VARIANTS = {
    "llama-tied": dict(),
    "llama-untied": dict(tie=False),
    "llama-mha": dict(num_key_value_heads=4),
    "llama3-rope": dict(
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        }
    ),
    "linear-rope": dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
    "qwen2-bias": dict(model_type="qwen2", use_sliding_window=False),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_matches_transformers(tmp_path, variant):
    folder = make_tiny_model(tmp_path / variant, seed=3, **VARIANTS[variant])
    model = load_backend(folder, "fp32")
    assert type(model).__name__ == "LlamaModel"
    expected = hf_logits(folder, IDS)
    got = model.forward(IDS, model.new_cache(64), 0, all_logits=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_by_step_decoding_equals_one_pass(tmp_path, variant):
    folder = make_tiny_model(tmp_path / variant, seed=3, **VARIANTS[variant])
    model = load_backend(folder, "fp32")
    full = model.forward(IDS, model.new_cache(32), 0, all_logits=True)
    cache = model.new_cache(32)
    steps = [model.forward([token], cache, pos) for pos, token in enumerate(IDS)]
    torch.testing.assert_close(torch.stack(steps), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4"])
def test_the_traced_step_gives_the_python_steps_logits_to_the_bit(tiny_model, precision):
    """Decoding replays a trace of the single-token step; at every position (one
    trace serves all) it must give exactly what running the step in Python gives,
    and leave exactly the same cache."""
    traced, plain = load_backend(tiny_model, precision), load_backend(tiny_model, precision)
    traced.trace_after = 2  # two steps in Python, then the trace: both sides of the switch compared
    plain.traced = False
    results = []
    for model in (traced, plain):
        cache = model.new_cache(32)
        model.forward(IDS[:4], cache, 0)
        logits = [model.forward([token], cache, pos) for pos, token in enumerate(IDS[4:], start=4)]
        written = len(IDS)  # the positions beyond were never written (nor read)
        results.append((torch.stack(logits), cache.k[:, :, :written], cache.v[:, :, :written]))
    assert traced._step is not None and plain._step is None
    for got, expected in zip(*results):
        assert torch.equal(got, expected)


def test_a_model_traces_its_step_only_after_its_first_steps_in_python(tiny_model):
    """A one-shot reply of a few tokens never pays for a trace; a longer one does once."""
    from pimpmyllama.generation.llama import TRACE_AFTER

    model = load_backend(tiny_model, "int4")
    assert model.trace_after == TRACE_AFTER
    model.trace_after = 3
    cache = model.new_cache(32)
    model.forward(IDS[:2], cache, 0)
    made = []
    for pos in range(2, 7):
        model.forward([IDS[pos]], cache, pos)
        made.append(model._step is not None)
    assert made == [False, False, False, True, True]


def test_chunked_prefill_after_a_cached_prefix_equals_one_pass(tiny_model):
    model = load_backend(tiny_model, "fp32")
    full = model.forward(IDS, model.new_cache(32), 0, all_logits=True)
    cache = model.new_cache(32)
    model.forward(IDS[:5], cache, 0)
    chunk = model.forward(IDS[5:], cache, 5, all_logits=True)
    torch.testing.assert_close(chunk, full[5:], rtol=1e-5, atol=1e-5)


def test_positions_beyond_the_cache_are_refused(tiny_model):
    model = load_backend(tiny_model, "fp32")
    with pytest.raises(ValueError, match="do not fit"):
        model.forward(IDS, model.new_cache(4), 0)


def test_unsupported_configs_fall_back_to_transformers(tmp_path):
    assert lean_unsupported_reason({"model_type": "gpt2"}) == "architecture 'gpt2'"
    assert lean_unsupported_reason({"model_type": "llama", "rope_scaling": {"rope_type": "longrope", "factor": 2}}) == (
        "rope type 'longrope'"
    )
    assert lean_unsupported_reason({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 2}}) is None
    assert lean_unsupported_reason({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 2,
                                                                            "mscale": 1.0}}) == "yarn with mscale"
    assert lean_unsupported_reason({"model_type": "mistral", "sliding_window": 4096}) == "sliding-window attention"
    assert lean_unsupported_reason({"model_type": "llama"}) is None


def test_a_traced_model_is_freed_with_its_weights(tiny_model):
    import gc
    import weakref

    from pimpmyllama.generation.llama import _tensors

    model = load_backend(tiny_model, "int8")
    model.trace_after = 0
    cache = model.new_cache(32)
    model.forward([1, 2, 3], cache, 0)
    model.forward([4], cache, 3)  # the first single-token step makes the trace
    assert model._step is not None
    assert "Tensor>" not in str(model._step.graph)  # the weights are read from the module, not kept as constants
    weights = [weakref.ref(t) for t in _tensors(model.layers)]
    assert len(weights) >= 2 * len(model.layers)
    del model, cache
    gc.collect()
    assert all(w() is None for w in weights)


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_the_embeddings_are_mapped_from_the_file_and_give_the_logits_a_read_table_gives(tiny_model, precision,
                                                                                         monkeypatch):
    """A reply reads a few rows of the token embeddings: they are mapped, not read, and
    each row is rounded as the read table was (int4 holds bf16 embeddings)."""
    from pimpmyllama.models.weights import TensorFiles

    mapped = load_backend(tiny_model, precision)
    assert mapped_file(mapped.embed) == str(tiny_model / "model.safetensors")
    mapping = TensorFiles.mapped  # the embeddings read instead (prepared weights are still mapped)
    monkeypatch.setattr(TensorFiles, "mapped",
                        lambda self, name: None if name.endswith("embed_tokens.weight") else mapping(self, name))
    read = load_backend(tiny_model, precision)
    assert mapped_file(read.embed) is None and read.embed.dtype == mapped.embed_dtype
    results = []
    for model in (mapped, read):
        model.trace_after = 2
        cache, other = model.new_cache(32), model.new_cache(32)
        prompt = model.forward(IDS[:4], cache, 0, all_logits=True)
        model.forward(IDS[:3], other, 0)
        steps = [model.forward([token], cache, pos) for pos, token in enumerate(IDS[4:8], start=4)]
        batch = model.forward_batch([IDS[8], IDS[3]], [cache, other], [8, 3])
        results.append((prompt, torch.stack(steps), batch))
    for got, expected in zip(*results):
        assert torch.equal(got, expected)
