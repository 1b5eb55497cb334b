"""The AVX2 library (generation/kernels/avx2) against the stated arithmetic, against
the AVX-512 library (bit for bit) where this CPU runs that one, and in the engine.

A process loads one library (both define the same ops), so the AVX2 kernels run once
in a worker process (this file run as a script, PML_KERNELS=avx2) on inputs both
processes make from the same seeds, and the tests compare what it wrote."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pimpmyllama.errors import PmlError
from pimpmyllama.generation import kernels
from pimpmyllama.generation.quant import (
    INT4_GROUP,
    INT8_GROUP,
    pack_int4_blocks,
    pack_int8_blocks,
    quantize_int4,
    quantize_int8_groups,
    quantize_int8_minima,
)
from pimpmyllama.generation.rope import apply_rotations, rope_rotations

SHAPES = [(64, 96), (40, 576), (200, 1536)]  # a partial last block, odd and even group counts
ROWS = 9  # crosses the tiles' edges
ATTENTION = [(9, 3, 64, 1), (9, 3, 64, 17), (4, 4, 32, 17), (8, 2, 128, 700), (12, 2, 64, 40)]
PRECISIONS = ["fp32", "bf16", "int8", "int4"]
AVX512 = set(kernels.LIBRARIES["avx512"].needed_flags) <= kernels.cpu_flags()
HAS_AVX2 = set(kernels.LIBRARIES["avx2"].needed_flags) <= kernels.cpu_flags()


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def products(n, k):
    """The inputs of the products for one shape, and their packed weights."""
    q4, d4, m4 = quantize_int4(rand(n, k, scale=0.05))
    q8, d8 = quantize_int8_groups(rand(n, k, seed=5, scale=0.05))
    a8 = quantize_int8_minima(rand(n, k, seed=6, scale=0.05))  # the int8 precision's q8_gemv weights
    return rand(ROWS, k, seed=1), (q4, d4, m4), pack_int4_blocks(q4, d4, m4), (q8, d8), pack_int8_blocks(q8, d8), a8


def extremes():
    """Products at the edges of the integer ranges: activations of +-127 after rounding,
    q4 weights of 15, q8 weights of -128 and 127 lined up with the activations' signs
    (pairs of products up to 2 * 128 * 127 in magnitude, and a group's sums past int16)."""
    signs = torch.tensor([-1.0, -1.0, 1.0, 1.0]).repeat(16)  # [64]: two groups; pairs of the same sign
    x = torch.stack([signs, -signs, torch.ones(64)])
    q4 = torch.full((16, 64), 15, dtype=torch.uint8)
    d4, m4 = torch.full((16, 2), 0.25, dtype=torch.float16), torch.full((16, 2), -1.0, dtype=torch.float16)
    q8 = torch.where(signs < 0, -128, 127).to(torch.int8).repeat(16, 1)
    d8 = torch.full((16, 2), 2**-10, dtype=torch.float16)
    a8 = (torch.where(signs < 0, 0, 255).to(torch.uint8).repeat(16, 1), d8, torch.full((16, 2), -0.125, dtype=torch.float16))
    return x, (q4, d4, m4), pack_int4_blocks(q4, d4, m4), (q8, d8), pack_int8_blocks(q8, d8), a8


def attention_inputs(heads, kv_heads, hd, end):
    keys, values = rand(kv_heads, end + 5, hd, seed=1), rand(kv_heads, end + 5, hd, seed=2)
    rotation = torch.view_as_real(rope_rotations(hd, {"rope_type": "default", "rope_theta": 10000.0}, end)[end - 1])
    return rand(1, (heads + 2 * kv_heads) * hd, seed=3), rotation, keys, values


def rows_inputs():
    heads, kv_heads, hd, layers, max_len, ends = 9, 3, 64, 2, 300, [1, 17, 300, 64]
    caches = [(rand(layers, kv_heads, max_len, hd, seed=10 + b), rand(layers, kv_heads, max_len, hd, seed=20 + b))
              for b in range(len(ends))]
    return rand(len(ends), (heads + 2 * kv_heads) * hd, seed=3), rand(len(ends), hd // 2, 2, seed=4), caches, ends, heads


def kernel_outputs() -> dict:
    """Every op on the inputs above, through whichever library this process loaded."""
    ops, out = torch.ops.pml, {}
    for shape, inputs in [*((f"{n}x{k}", products(n, k)) for n, k in SHAPES), ("extremes", extremes())]:
        x, _, q4_blocks, (q8, d8), q8_blocks, a8 = inputs
        n = q8.shape[0]
        for name, product in (("q4_blocks_gemv", lambda rows: ops.q4_blocks_gemv(rows, q4_blocks, n)),
                              ("q8_blocks_gemv", lambda rows: ops.q8_blocks_gemv(rows, q8_blocks, n)),
                              ("q8_gemv", lambda rows: ops.q8_gemv(rows, *a8))):
            out[f"{name} {shape}"] = product(x)
            out[f"{name} {shape} row by row"] = torch.cat([product(row[None]) for row in x])
        out[f"q4_blocks_dequant {shape}"] = ops.q4_blocks_dequant(q4_blocks, n)
        out[f"q8_dequant {shape}"] = ops.q8_dequant(*a8)
    out["rms_norm"] = ops.rms_norm(rand(3, 200), rand(200, seed=1), 1e-5)
    out["silu_mul"] = ops.silu_mul(rand(2, 300, seed=2, scale=4))
    for case in ATTENTION:
        qkv, rotation, keys, values = attention_inputs(*case)
        end = case[-1]
        out[f"attend_one {case}"] = ops.attend_one(qkv, rotation, keys[:, :end], values[:, :end], case[0])
        out[f"cache {case}"] = torch.stack([keys, values])
    qkv, rotations, caches, ends, heads = rows_inputs()
    out["attend_rows"] = ops.attend_rows(qkv, rotations, [k for k, _ in caches], [v for _, v in caches], ends, 1, heads)
    out["attend_rows caches"] = torch.stack([torch.stack(c) for c in caches])
    return out


def greedy_tokens(model_folder: Path) -> dict[str, list[int]]:
    from pimpmyllama.generation.engine import Engine, GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams

    params = GenerationParams(max_new_tokens=12, ignore_end_tokens=True,
                              sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    tokens = {}
    for precision in PRECISIONS:
        engine = Engine.load("tiny", model_folder, precision=precision)
        tokens[precision] = engine.generate(engine.tokenizer.encode("The post office opens at"), params, 128).run().tokens
    return tokens


@pytest.fixture(scope="module")
def avx2(tiny_model, tmp_path_factory) -> dict:
    """What the worker computed with the AVX2 library: its name, the ops' outputs and
    the engine's greedy tokens at each precision."""
    if not HAS_AVX2:
        pytest.skip("this CPU has no AVX2")
    target = tmp_path_factory.mktemp("avx2") / "outputs.pt"
    env = {**os.environ, "PML_KERNELS": "avx2",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, str(tiny_model), str(target)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(target)


def test_the_worker_ran_the_avx2_library(avx2):
    assert avx2["library"] == "avx2"


def q_dots(x, q, group):
    """x rounded to int8 per group of 32 (scale max|x| / 127) and its exact integer dot
    products with the weights' q per group: (dots [rows, n, groups], scale, x groups, rounded x groups)."""
    n, k = q.shape
    xg = x.reshape(x.shape[0], 1, k // group, group)
    scale = xg.abs().amax(-1) / 127
    xq = torch.round(xg * torch.where(scale > 0, 1 / scale, 0)[..., None]).to(torch.int64)
    return (q.reshape(1, n, k // group, group).to(torch.int64) * xq).sum(-1), scale, xg, xq


@pytest.mark.parametrize("shape", [*(f"{n}x{k}" for n, k in SHAPES), "extremes"])
def test_avx2_products_are_the_group_arithmetic_they_state(avx2, shape):
    x, (q4, d4, m4), _, (q8, d8), _, (a8, da8, ma8) = extremes() if shape == "extremes" else products(*map(int, shape.split("x")))
    n, k = q8.shape
    outputs = avx2["kernels"]
    dots, scale, _, xq = q_dots(x, q4, INT4_GROUP)
    rounded_sums = scale.double() * xq.sum(-1).double()  # each group's sum of the rounded x
    q4_expected = (dots.double() * scale.double() * d4.double()[None]).sum(-1) + (m4.double()[None] * rounded_sums).sum(-1)
    torch.testing.assert_close(outputs[f"q4_blocks_gemv {shape}"].double(), q4_expected, rtol=1e-5, atol=1e-5)
    dots, scale, _, _ = q_dots(x, q8, INT8_GROUP)
    q8_expected = (dots.double() * scale.double() * d8.double()[None]).sum(-1)
    torch.testing.assert_close(outputs[f"q8_blocks_gemv {shape}"].double(), q8_expected, rtol=1e-5, atol=1e-5)
    restored = (a8.reshape(n, -1, INT8_GROUP).float() * da8.float()[..., None] + ma8.float()[..., None]).reshape(n, k)
    torch.testing.assert_close(outputs[f"q8_gemv {shape}"].double(), x.double() @ restored.double().T, rtol=1e-5, atol=1e-6)
    for name in ("q4_blocks_gemv", "q8_blocks_gemv", "q8_gemv"):  # tiles of rows: each row gets what it gets alone
        assert torch.equal(outputs[f"{name} {shape} row by row"], outputs[f"{name} {shape}"])
    dense4 = q4.reshape(n, -1, INT4_GROUP).float() * d4.float()[..., None] + m4.float()[..., None]
    assert torch.equal(outputs[f"q4_blocks_dequant {shape}"], dense4.reshape(n, k).bfloat16())
    assert torch.equal(outputs[f"q8_dequant {shape}"], restored.float().bfloat16())


def test_the_extremes_are_past_what_the_offset_bytes_hold_in_int16():
    """(What makes the extremes' case a test of the q8 sign trick and the q4 int16 sums.)"""
    x, (q4, _, _), _, (q8, _), _, _ = extremes()
    dots8, _, xg, _ = q_dots(x, q8, INT8_GROUP)
    shifted = (q8.to(torch.int64) + 128).reshape(16, 2, 16, 2)  # the layout's bytes, in maddubs' pairs
    xq = torch.round(xg * 127).to(torch.int64).reshape(3, 1, 2, 16, 2)
    assert int((shifted[None] * xq).sum(-1).abs().max()) > 32767  # maddubs would saturate on them
    assert int(dots8.abs().max()) == 16 * (128 * 127 + 127 * 127)  # the exact sums the kernel must give
    dots4, _, _, _ = q_dots(x, q4, INT4_GROUP)
    assert int(dots4.abs().max()) == 32 * 15 * 127  # 30480 over a row's two int16 lanes: no overflow


def test_avx2_rms_norm_and_silu_mul_match_torch(avx2):
    outputs = avx2["kernels"]
    torch.testing.assert_close(outputs["rms_norm"], F.rms_norm(rand(3, 200), (200,), rand(200, seed=1), 1e-5),
                               rtol=1e-5, atol=1e-6)
    gate_up = rand(2, 300, seed=2, scale=4)
    torch.testing.assert_close(outputs["silu_mul"], F.silu(gate_up[:, :150]) * gate_up[:, 150:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ATTENTION, ids=str)
def test_avx2_attend_one_rotates_writes_the_cache_and_attends(avx2, case):
    heads, kv_heads, hd, end = case
    qkv, _, keys, values = attention_inputs(*case)
    rotation = rope_rotations(hd, {"rope_type": "default", "rope_theta": 10000.0}, end)[end - 1 :]
    qk = apply_rotations(qkv[:, : (heads + kv_heads) * hd].view(1, heads + kv_heads, hd), rotation)[0]
    new_k, new_v = avx2["kernels"][f"cache {case}"]
    torch.testing.assert_close(new_k[:, end - 1], qk[heads:], rtol=1e-6, atol=1e-6)
    assert torch.equal(new_v[:, end - 1], qkv[0, (heads + kv_heads) * hd :].view(kv_heads, hd))
    for cache, before in ((new_k, keys), (new_v, values)):  # nothing else in the cache moved
        assert torch.equal(cache[:, : end - 1], before[:, : end - 1]) and torch.equal(cache[:, end:], before[:, end:])
    q = qk[:heads].view(1, kv_heads, heads // kv_heads, hd)
    expected = F.scaled_dot_product_attention(q, new_k[None, :, :end], new_v[None, :, :end])
    torch.testing.assert_close(avx2["kernels"][f"attend_one {case}"], expected.reshape(1, heads * hd), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not AVX512, reason="this CPU does not run the AVX-512 library to compare with")
def test_avx2_kernels_give_the_avx512_kernels_results_bit_for_bit(avx2):
    assert kernels.load() and kernels.chosen().name == "avx512"
    ours = kernel_outputs()
    assert ours.keys() == avx2["kernels"].keys()
    different = [name for name in ours if not torch.equal(ours[name], avx2["kernels"][name])]
    assert different == []


def test_avx2_engine_gives_pytorchs_greedy_tokens_where_the_products_are_the_same(avx2, tiny_model, monkeypatch):
    """At fp32 and bf16 the linear layers are PyTorch's either way and ours are the
    step's small operations; at int8 and int4 the weights' formats differ (a scale per
    row, PyTorch's int4 packing), so there it is held to the AVX-512 library's tokens."""
    monkeypatch.setattr(kernels, "load", lambda: False)
    pytorch = greedy_tokens(tiny_model)
    for precision in ("fp32", "bf16"):
        assert avx2["tokens"][precision] == pytorch[precision]


@pytest.mark.skipif(not AVX512, reason="this CPU does not run the AVX-512 library to compare with")
def test_avx2_engine_gives_the_avx512_engines_greedy_tokens(avx2, tiny_model):
    assert kernels.load() and kernels.chosen().name == "avx512"
    assert avx2["tokens"] == greedy_tokens(tiny_model)


@pytest.mark.parametrize("flags,wanted,name", [
    ({"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma", "f16c"}, "1", "avx512"),
    ({"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma", "f16c"}, "avx2", "avx2"),
    ({"avx2", "fma", "f16c"}, "1", "avx2"),
    ({"avx2", "fma", "f16c"}, "avx512", None),  # asked for, but this CPU cannot run it
    ({"avx2", "fma"}, "1", None),  # no F16C: PyTorch's kernels
    ({"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma", "f16c"}, "0", None),
])
def test_the_library_is_chosen_by_the_cpus_flags_and_pml_kernels(monkeypatch, flags, wanted, name):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: flags)
    monkeypatch.setenv("PML_KERNELS", wanted)
    library = kernels.chosen()
    assert (library and library.name) == name


def test_a_library_this_cpu_cannot_run_is_not_loaded_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"avx2", "fma", "f16c"})
    monkeypatch.setenv("PML_KERNELS", "avx512")
    assert kernels.load.__wrapped__() is False
    assert capsys.readouterr().err == "pimpmyllama: using PyTorch's kernels (this CPU cannot run PML_KERNELS=avx512)\n"


def test_an_unknown_pml_kernels_value_is_refused_with_the_known_ones(monkeypatch):
    monkeypatch.setenv("PML_KERNELS", "neon")
    with pytest.raises(PmlError, match="PML_KERNELS='neon' is none of 0, 1, avx512, avx2"):
        kernels.chosen()


if __name__ == "__main__":  # the worker: this process's library (PML_KERNELS) on the inputs above
    assert kernels.load(), "the kernels did not load"
    torch.save({"library": kernels.chosen().name, "kernels": kernel_outputs(), "tokens": greedy_tokens(Path(sys.argv[1]))},
               sys.argv[2])
