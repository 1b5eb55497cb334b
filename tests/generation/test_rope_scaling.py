"""Rope scaling (linear, dynamic, YaRN) against transformers: the rotary frequencies
and attention factor of modeling_rope_utils, and the logits of LlamaForCausalLM with
the same rope parameters, through our prompt and decode paths."""

import json

import pytest
import torch

from pimpmyllama.generation.engine import Engine
from pimpmyllama.generation.rope import attention_factor, inverse_frequencies, rope_parameters, scaled_config
from pimpmyllama.prompting.build import ROPE_SCALING_TYPES, RopeScaling
from rope_reference import hf_scaled_logits
from tiny import make_tiny_model

TRAINED = 16  # the tiny model's trained length: every test sequence goes past it

SCALINGS = {
    "linear": {"type": "linear", "factor": 4.0},
    "dynamic": {"type": "dynamic", "factor": 4.0},
    "yarn": {"type": "yarn", "factor": 4.0},
    "yarn-tuned": {"type": "yarn", "factor": 3.0, "beta_fast": 16.0, "beta_slow": 2.0, "attention_factor": 1.3},
}


def hf_rope(scaling: dict, seq_len: int | None, head_dim: int = 64, theta: float = 100000.0):
    """transformers' inverse frequencies and attention factor for a Llama config."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    params = {"rope_type": scaling["type"], "rope_theta": theta,
              **{k: v for k, v in scaling.items() if k != "type"}}
    config = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                         max_position_embeddings=512, rope_parameters=params)
    inv_freq, factor = ROPE_INIT_FUNCTIONS[scaling["type"]](config, "cpu", seq_len=seq_len)
    return inv_freq.double(), factor


@pytest.mark.parametrize("name", SCALINGS)
@pytest.mark.parametrize("num_ctx", [256, 512, 1536])
def test_scaled_frequencies_equal_transformers(name, num_ctx):
    scaling = SCALINGS[name]
    config = {"max_position_embeddings": 512, "rope_theta": 100000.0}
    params = rope_parameters(scaled_config(config, scaling, num_ctx))
    expected, expected_factor = hf_rope(scaling, num_ctx)
    # transformers computes in float32, we in float64: equal to float32's precision
    torch.testing.assert_close(inverse_frequencies(64, params), expected, rtol=2e-7, atol=0)
    assert attention_factor(params) == pytest.approx(expected_factor, rel=1e-15)


def test_the_formulas_move_the_frequencies_as_published():
    """The cases that show each formula is the one in force, not the identity."""
    config = {"max_position_embeddings": 512, "rope_theta": 100000.0}
    plain = inverse_frequencies(64, rope_parameters(config))
    linear = inverse_frequencies(64, rope_parameters(scaled_config(config, SCALINGS["linear"])))
    torch.testing.assert_close(linear, plain / 4, rtol=0, atol=0)
    at_trained = rope_parameters(scaled_config(config, SCALINGS["dynamic"], 512))
    torch.testing.assert_close(inverse_frequencies(64, at_trained), plain, rtol=0, atol=0)  # no change up to it
    at_4x = inverse_frequencies(64, rope_parameters(scaled_config(config, SCALINGS["dynamic"], 2048)))
    assert at_4x[0] == plain[0] and (at_4x[1:] < plain[1:]).all()  # base 100000 × 4^(64/62)
    yarn = inverse_frequencies(64, rope_parameters(scaled_config(config, SCALINGS["yarn"])))
    assert yarn[0] == plain[0] and yarn[-1].item() == pytest.approx(plain[-1].item() / 4, rel=1e-15)  # fast kept, slow divided
    assert attention_factor(rope_parameters(scaled_config(config, SCALINGS["yarn"]))) == pytest.approx(
        0.1 * torch.log(torch.tensor(4.0, dtype=torch.float64)).item() + 1)


def test_the_build_types_are_the_engines():
    assert set(ROPE_SCALING_TYPES) == set(RopeScaling.model_fields["type"].annotation.__args__)
    config = {"max_position_embeddings": 512}
    for kind in ROPE_SCALING_TYPES:
        inverse_frequencies(16, rope_parameters(scaled_config(config, {"type": kind, "factor": 2.0}, 1024)))


@pytest.fixture(scope="module")
def short_model(tmp_path_factory):
    """A tiny model trained (nominally) for 16 positions."""
    return make_tiny_model(tmp_path_factory.mktemp("short") / "m", seed=5, max_position_embeddings=TRAINED)


IDS = [5, 17, 42, 99, 3, 250, 7, 64, 128, 11, 300, 2, 9, 33, 71, 150, 201, 8, 19, 77, 260, 4, 90, 12,
       45, 61, 180, 222, 6, 14, 99, 31, 57, 240, 3, 88]  # 36 tokens, 2.25 × the trained length
PROMPT = 30  # then 6 single-token (decode) steps


@pytest.mark.parametrize("name", SCALINGS)
def test_engine_logits_equal_transformers_with_the_same_scaling(short_model, name):
    scaling = SCALINGS[name]
    engine = Engine.load("short", short_model, precision="fp32", rope_scaling=RopeScaling(**scaling),
                         num_ctx=len(IDS))
    model = engine.backend
    model.trace_after = 0
    cache = model.new_cache(len(IDS))
    prompt = model.forward(IDS[:PROMPT], cache, 0, all_logits=True)
    steps = [model.forward([IDS[pos]], cache, pos) for pos in range(PROMPT, len(IDS))]  # the traced step
    assert model._step is not None
    expected = hf_scaled_logits(short_model, scaling, IDS)
    torch.testing.assert_close(torch.cat([prompt, torch.stack(steps)]), expected, rtol=1e-4, atol=1e-4)
    unscaled = hf_scaled_logits(short_model, {"type": "linear", "factor": 1.0}, IDS)
    assert (expected[TRAINED:] - unscaled[TRAINED:]).abs().max() > 0.1  # the scaling is not a no-op here


@pytest.mark.parametrize("precision", ["bf16", "int8", "int4"])
def test_every_precision_decodes_with_the_scaling_its_prompt_used(short_model, precision):
    """Decode steps (traced) give the logits the prompt path gives for the same positions
    (to the precision's rounding, which differs between the two paths at int4), far
    closer than those of the unscaled model."""
    engine = Engine.load("short", short_model, precision=precision, rope_scaling=RopeScaling(type="yarn", factor=4),
                         num_ctx=len(IDS))
    model = engine.backend
    full = model.forward(IDS, model.new_cache(len(IDS)), 0, all_logits=True)
    cache = model.new_cache(len(IDS))
    model.forward(IDS[:PROMPT], cache, 0)
    steps = torch.stack([model.forward([IDS[pos]], cache, pos) for pos in range(PROMPT, len(IDS))])
    plain = Engine.load("short", short_model, precision=precision).backend
    unscaled = plain.forward(IDS, plain.new_cache(len(IDS)), 0, all_logits=True)[PROMPT:]
    gap = (steps - full[PROMPT:]).abs().mean()
    assert gap < 0.05 * (unscaled - full[PROMPT:]).abs().mean(), gap


def test_the_transformers_backend_runs_with_the_scaling(short_model):
    from pimpmyllama.generation.hf_backend import HFBackend

    config = json.loads((short_model / "config.json").read_text())
    params = scaled_config(config, SCALINGS["yarn"])["rope_parameters"]
    backend = HFBackend(short_model, rope=params)
    got = backend.forward(IDS, backend.new_cache(len(IDS)), 0, all_logits=True)
    torch.testing.assert_close(got, hf_scaled_logits(short_model, SCALINGS["yarn"], IDS), rtol=1e-5, atol=1e-5)
