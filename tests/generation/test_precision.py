"""Precisions: weight-only int8/int4 layers against fp32, and the decode path against
a plain recomputation at the same precision."""

import pytest
import torch

from pimpmyllama.generation.products import SHORT_PROMPT_ROWS, Dense, Int4, Int8, Linear, product_for
from pimpmyllama.generation.quant import (
    INT4_GROUP,
    INT8_GROUP,
    quantize_int4,
    quantize_int8,
    quantize_int8_groups,
    quantize_int8_minima,
)


@pytest.fixture
def weight():
    return torch.randn(256, 192, generator=torch.Generator().manual_seed(0)) * 0.05


def test_int8_rounds_each_weight_to_its_rows_grid(weight):
    q, scales = quantize_int8(weight)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert torch.allclose(scales, weight.abs().amax(dim=1) / 127)
    assert ((q.float() * scales[:, None] - weight).abs() <= scales[:, None] / 2 + 1e-7).all()


def test_int8_groups_round_each_weight_to_its_groups_fp16_grid(weight):
    """llama.cpp's Q8_0 grid: d = max|w| / 127 per group of 32, kept as fp16, and each
    weight rounded against the d that is kept."""
    q, d = quantize_int8_groups(weight)
    assert q.dtype == torch.int8 and q.abs().max() <= 127 and d.dtype == torch.float16 and d.shape == (256, 6)
    groups = weight.reshape(256, -1, INT8_GROUP)
    assert torch.equal(d, (groups.abs().amax(-1) / 127).half())
    assert torch.equal(q.reshape(256, -1, INT8_GROUP), torch.round(groups / d.float()[..., None]).clamp(-127, 127).to(torch.int8))


def test_int8_holds_groups_where_our_kernels_run_and_rows_elsewhere(weight, monkeypatch):
    from pimpmyllama.generation import kernels

    if not kernels.load():
        pytest.skip("our kernels are not built on this machine")
    grouped = Int8(weight, torch.bfloat16, ours=True)
    assert grouped.ours and grouped.scales.shape == grouped.minima.shape == (256, 6)
    symmetric = Int8(weight, torch.bfloat16, ours=True, int8_activations=True)  # int4's head: Q8_0
    assert symmetric.ours and symmetric.minima is None and symmetric.q.dtype == torch.int8
    assert not Int8(weight[:, :100], torch.bfloat16, ours=True).ours  # 100 inputs: not whole groups
    rows = Int8(weight, torch.bfloat16, ours=False)
    assert not rows.ours and rows.scales.shape == (256,) and rows.scales.dtype == torch.bfloat16
    for layer in (grouped, symmetric, rows):  # the dense weights a prompt's product uses: q * d (+ m), as bf16
        scales = layer.scales.float().reshape(256, -1, 1)
        restored = layer.q.float().reshape(256, scales.shape[1], -1) * scales
        if layer.minima is not None:
            restored = restored + layer.minima.float().reshape(256, -1, 1)
        assert torch.equal(layer.dequantized(), restored.reshape(256, 192).to(torch.bfloat16))
        if layer.ours:  # PyTorch's arithmetic where our dequantizing kernel does not run: the same numbers
            layer.dtype = torch.float32
            assert torch.equal(layer.dequantized().bfloat16(), restored.reshape(256, 192).to(torch.bfloat16))


def test_int8_with_minima_rounds_each_weight_to_its_groups_256_level_grid(weight):
    q, scales, minima = quantize_int8_minima(weight)
    assert q.dtype == torch.uint8 and scales.dtype == minima.dtype == torch.float16 and scales.shape == (256, 6)
    groups = weight.reshape(256, -1, INT8_GROUP)
    assert torch.equal(minima, groups.amin(-1).half())
    assert torch.equal(scales, ((groups.amax(-1) - minima.float()) / 255).half())
    restored = q.reshape(256, -1, INT8_GROUP).float() * scales.float()[..., None] + minima.float()[..., None]
    assert ((restored - groups).abs() <= scales.float()[..., None] * (0.5 + 255 * 2**-11) + 1e-6).all()


def test_int8_with_minima_holds_a_q4_1_grid_all_but_exactly():
    """The default model's layers sit on the Q4_1 grid (it was made from its Q4_1 file):
    256 levels with a minimum hold each of those weights to within a few thousandths of
    the 4-bit step, where the symmetric Q8_0 grid rounds them by up to half its own step."""
    q4, d4, m4 = quantize_int4(torch.randn(64, 256, generator=torch.Generator().manual_seed(3)) * 0.05)
    on_grid = (q4.reshape(64, -1, INT4_GROUP).float() * d4.float()[..., None] + m4.float()[..., None]).reshape(64, 256)
    q, scales, minima = quantize_int8_minima(on_grid)
    assert torch.equal(q.int(), 17 * q4.int())  # each 4-bit level on its 8-bit twin: 255 = 17 * 15
    restored = (q.reshape(64, -1, INT8_GROUP).float() * scales.float()[..., None] + minima.float()[..., None])
    step4 = d4.float()[..., None]
    # off only by the fp16 rounding of the new step (d / 17), times up to 255
    assert ((restored.reshape(64, 256) - on_grid).abs().reshape(64, -1, INT8_GROUP) <= step4 * 2**-7).all()
    q0, d0 = quantize_int8_groups(on_grid)
    symmetric = (q0.reshape(64, -1, INT8_GROUP).float() * d0.float()[..., None]).reshape(64, 256)
    assert ((symmetric - on_grid).abs().reshape(64, -1, INT8_GROUP) > step4 * 2**-6).any()


def test_int4_rounds_each_weight_to_its_groups_grid(weight):
    """fp16 scale and minimum per group of 32 (llama.cpp's Q4_1); each weight rounded
    against the fp16 values that are kept."""
    q, scales, minima = quantize_int4(weight)
    assert q.min() >= 0 and q.max() <= 15 and scales.dtype == minima.dtype == torch.float16
    groups = weight.reshape(256, -1, INT4_GROUP)
    assert torch.equal(minima, groups.amin(-1).half())
    assert torch.equal(scales, ((groups.amax(-1) - minima.float()) / 15).half())
    restored = q.reshape(256, -1, INT4_GROUP).float() * scales.float()[..., None] + minima.float()[..., None]
    error = (restored - groups).abs()
    # half a step, plus what the fp16 step's rounding can add at the top of the range
    assert (error <= scales.float()[..., None] * (0.5 + 15 * 2**-11) + 1e-6).all()


# Relative error of a layer's output against fp32, on random inputs: int8 per-row
# scales stay under 1.5 %, int4 groups of 32 under 10 %; bf16 under 0.5 %.
BOUNDS = {None: 1e-6, 16: 5e-3, 8: 1.5e-2, 4: 0.1}


@pytest.mark.parametrize("bits", [None, 16, 8, 4])
@pytest.mark.parametrize("rows", [1, 7])
def test_each_layer_stays_within_its_stated_error(weight, bits, rows):
    x = torch.randn(rows, 192, generator=torch.Generator().manual_seed(1))
    bias = torch.randn(256) * 0.01
    dtype = torch.float32 if bits is None else torch.bfloat16
    layer = Linear(weight, bias, dtype, None if bits == 16 else bits)
    expected = x @ weight.T + bias
    y = layer(x)
    assert y.dtype == torch.float32 and y.shape == (rows, 256)  # the bias is added in fp32
    assert float((y - expected).norm() / expected.norm()) < BOUNDS[bits]


def test_a_short_prompt_goes_row_by_row_through_our_int4_kernel(weight):
    from pimpmyllama.generation import kernels

    if not kernels.load():
        pytest.skip("our kernels are not built on this machine")
    layer = Linear(weight, None, torch.bfloat16, 4)
    x = torch.randn(SHORT_PROMPT_ROWS, 192, generator=torch.Generator().manual_seed(3))
    assert torch.equal(layer(x), torch.cat([layer(row[None]) for row in x]))


@pytest.mark.parametrize("ours", [True, False], ids=["our-kernels", "pytorch-kernels"])
@pytest.mark.parametrize("bits", [8, 4])
def test_the_kernel_and_the_dequantized_product_agree(weight, bits, ours, monkeypatch):
    """One row goes through a quantized kernel (ours, or PyTorch's where ours are not
    built), many through the dense bf16 product of the dequantized weights: the same
    weights, so the same numbers up to bf16 (and at int4 in our kernel, up to the
    activations' rounding to int8)."""
    from pimpmyllama.generation import kernels

    if ours and not kernels.load():
        pytest.skip("our kernels are not built on this machine")
    if not ours:
        monkeypatch.setattr(kernels, "load", lambda: False)
    layer = Linear(weight, None, torch.bfloat16, bits)
    assert layer.product.ours == ours
    rows = SHORT_PROMPT_ROWS + 1  # more than a short prompt (which goes row by row through our int4 kernel)
    x = torch.randn(rows, 192, generator=torch.Generator().manual_seed(2))
    many, one_by_one = layer(x), torch.cat([layer(x[i : i + 1]) for i in range(rows)])
    assert many.dtype == torch.bfloat16  # without a bias, the dense product stays bf16
    assert one_by_one.dtype == (torch.float32 if ours else torch.bfloat16)
    many, one_by_one = many.float(), one_by_one.float()
    assert float((many - one_by_one).norm() / many.norm()) < (2e-2 if ours and bits == 4 else 5e-3)


def test_each_format_is_its_own_product_and_int4_falls_back_to_int8_where_its_kernels_do_not_fit(weight):
    assert type(product_for(weight, torch.float32, None)) is Dense
    assert product_for(weight, torch.bfloat16, None).weight.dtype == torch.bfloat16
    assert type(product_for(weight, torch.bfloat16, 8)) is Int8
    assert type(product_for(weight, torch.bfloat16, 4)) is Int4
    odd = weight[:, :100]  # 100 inputs: not a whole number of groups of 32
    assert type(product_for(odd, torch.bfloat16, 4)) is Int8
    x = torch.randn(3, 100, generator=torch.Generator().manual_seed(1))
    expected = x @ odd.T
    y = Linear(odd, None, torch.bfloat16, 4)(x).float()
    assert float((y - expected).norm() / expected.norm()) < BOUNDS[8]


def test_a_layer_holds_a_quarter_or_an_eighth_of_the_bytes(weight):
    fp32 = weight.numel() * 4
    assert Linear(weight, None, torch.bfloat16, 8).nbytes() < 0.29 * fp32  # 36 bytes per 32 weights: 0.28
    assert Linear(weight, None, torch.bfloat16, 4).nbytes() < 0.30 * fp32  # packed, plus nibbles to dequantize


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4"])
def test_decoding_gives_the_greedy_tokens_of_a_plain_recomputation(tiny_model, precision):
    """The engine (prompt in one pass, then one token at a time against the KV cache,
    replaying the traced step with our fused kernels) against a plain recomputation
    for every token: a fresh cache, the prompt in one pass and the generated tokens one
    at a time through the untraced step written with PyTorch's operations."""
    from pimpmyllama.generation.engine import Engine, GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams

    engine = Engine.load("tiny", tiny_model, precision=precision)
    prompt = engine.tokenizer.encode("The post office opens at")
    params = GenerationParams(max_new_tokens=12, ignore_end_tokens=True,
                              sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    fast = engine.generate(prompt, params, 128).run().tokens

    model = engine.backend
    # At int4 with our kernels a short prompt goes row by row through them (llama.py),
    # and the activations' rounding to int8 there turns the float differences between
    # our attention and PyTorch's into different tokens on this random model: the
    # plain recomputation keeps our kernels there (kernel tests hold them to PyTorch's).
    fused = model.fused and precision == "int4" and model.layers[0].qkv.product.ours
    plain = list(prompt)
    for _ in range(12):
        model.traced, model.fused = False, fused
        cache = model.new_cache(128)
        logits = model.forward(plain[: len(prompt)], cache, 0)
        for position in range(len(prompt), len(plain)):
            logits = model.forward([plain[position]], cache, position)
        plain.append(int(logits.argmax()))
    assert fast == plain[len(prompt):]

    # Where single tokens and prompts take the same products, the whole sequence in one
    # pass gives those tokens too (at int4 our kernel rounds a token's activations to
    # int8, which a prompt's bf16 product does not).
    if precision != "int4" or not model.layers[0].qkv.product.ours:
        whole = list(prompt)
        for _ in range(12):
            whole.append(int(model.forward(whole, model.new_cache(128), 0).argmax()))
        assert fast == whole[len(prompt):]


def test_an_unknown_precision_is_refused(tiny_model):
    from pimpmyllama.errors import InvalidInputError
    from pimpmyllama.generation.engine import Engine

    with pytest.raises(InvalidInputError, match="unknown precision 'int3' \\(known: fp32, bf16, int8, int4\\)"):
        Engine.load("tiny", tiny_model, precision="int3")


def test_int4_holds_the_layers_at_4_bits_and_the_head_at_8(tiny_model):
    from pimpmyllama.generation.loading import load_backend

    model = load_backend(tiny_model, "int4")
    assert {layer.qkv.product.bits for layer in model.layers} == {4}
    assert {layer.down.product.bits for layer in model.layers} == {4}
    assert model.head.product.bits == 8 and model.head.product.q.dtype == torch.int8
    assert load_backend(tiny_model, "int8").head.product.bits == 8


def test_the_default_precision_is_int4_where_the_lean_forward_runs(tiny_model):
    """(Where transformers runs the model, the default is fp32: test_hf_backend.py.)"""
    from pimpmyllama.generation.engine import Engine
    from pimpmyllama.generation.precision import DEFAULT_PRECISION

    assert DEFAULT_PRECISION == "int4"
    assert Engine.load("tiny", tiny_model).backend.bits == 4


@pytest.mark.parametrize("made_by, bits", [(None, 4), ("import", 4), ("train", 8), ("merge", 8), ("merge-lora", 8)])
def test_a_fine_tuned_or_merged_model_runs_at_int8_unless_told(tiny_model, tmp_path, made_by, bits):
    import shutil

    from pimpmyllama.generation.loading import load_backend
    from pimpmyllama.models.manifest import MODEL_MANIFEST, Manifest

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    if made_by is not None:
        (folder / MODEL_MANIFEST).write_text(Manifest(kind="model", made_by=made_by, source="test").to_json())
    assert load_backend(folder).bits == bits
    assert load_backend(folder, "int4").bits == 4  # what is asked for wins
