"""Our CPU kernels (generation/kernels) against the same arithmetic written in torch."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pimpmyllama.generation import kernels
from pimpmyllama.generation.quant import (
    INT4_GROUP,
    INT8_GROUP,
    pack_int4_blocks,
    pack_int8_blocks,
    pack_nibbles,
    quantize_int4,
    quantize_int8_groups,
    quantize_int8_minima,
    unpack_int4_blocks,
    unpack_nibbles,
)
from pimpmyllama.generation.rope import apply_rotations, rope_rotations

pytestmark = pytest.mark.skipif(not kernels.load(), reason="this CPU or machine cannot build our kernels")


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_nibbles_pack_a_group_as_its_two_halves():
    q = torch.arange(64, dtype=torch.uint8).remainder(16).reshape(1, 64)  # two groups: 0..15, 0..15 twice
    packed = pack_nibbles(q)
    assert packed.shape == (1, 32)
    assert packed[0, 0] == 0 | (0 << 4) and packed[0, 5] == 5 | (5 << 4)  # q[j] low, q[j + 16] high
    assert torch.equal(unpack_nibbles(packed), q)


@pytest.mark.parametrize("n,k", [(40, 64), (960, 576)])  # a last block of 8 rows, padded
def test_int4_blocks_hold_sixteen_rows_per_group_and_unpack_to_the_same_weights(n, k):
    q, d, m = quantize_int4(rand(n, k, scale=0.05))
    blocks = pack_int4_blocks(q, d, m)
    assert blocks.shape == (-(-n // 16), k // INT4_GROUP, 320)
    # block 0, group 1, chunk 2: row 3's inputs 8..11 in the low nibbles, 24..27 in the high ones
    chunk = blocks[0, 1, 128:192]
    assert torch.equal(chunk[12:16] & 15, q[3, 32 + 8 : 32 + 12]) and torch.equal(chunk[12:16] >> 4, q[3, 32 + 24 : 32 + 28])
    assert torch.equal(blocks[0, 1, 256:288].view(torch.float16), d[:16, 1])
    assert torch.equal(blocks[0, 1, 288:320].view(torch.float16), m[:16, 1])
    assert all(torch.equal(a, b) for a, b in zip(unpack_int4_blocks(blocks, n), (q, d, m)))


def q4_reference(x, q, d, m):
    """The kernel's arithmetic: x rounded to int8 per group of 32 (scale max|x| / 127),
    exact integer dot products per group, then the scales, and m times the group's sum
    of the rounded x (scale * sum(q)): the dequantized weights times the rounded x."""
    n, k = q.shape
    xg = x.reshape(x.shape[0], 1, k // INT4_GROUP, INT4_GROUP)
    scale = xg.abs().amax(-1) / 127
    xq = torch.round(xg * torch.where(scale > 0, 1 / scale, 0)[..., None]).to(torch.int64)
    dots = (q.reshape(1, n, k // INT4_GROUP, INT4_GROUP).to(torch.int64) * xq).sum(-1)  # [rows, n, groups]
    rounded_sums = scale.double() * xq.sum(-1).double()
    return (dots.double() * scale.double() * d.double()[None]).sum(-1) + (m.double()[None] * rounded_sums).sum(-1)


@pytest.mark.parametrize("n,k", [(64, 96), (48, 576), (200, 1536)])  # odd and even group counts, a partial block
@pytest.mark.parametrize("rows", [1, 3, 9])
def test_q4_gemv_is_the_group_arithmetic_it_states(n, k, rows):
    weight = rand(n, k, scale=0.05)
    q, d, m = quantize_int4(weight)
    x = rand(rows, k, seed=1)
    y = torch.ops.pml.q4_blocks_gemv(x, pack_int4_blocks(q, d, m), n)
    assert y.dtype == torch.float32 and y.shape == (rows, n)
    torch.testing.assert_close(y.double(), q4_reference(x, q, d, m), rtol=1e-5, atol=1e-5)
    # which is the dequantized weights times the rounded activations (as llama.cpp's
    # Q4_1 x Q8_1): each activation's rounding weighed by its weight, not by w - m
    dense = (q.reshape(n, -1, INT4_GROUP).float() * d.float()[..., None] + m.float()[..., None]).reshape(n, k)
    xg = x.reshape(rows, -1, INT4_GROUP)
    scale = xg.abs().amax(-1, keepdim=True) / 127
    rounded = (torch.round(xg / scale) * scale).reshape(rows, k)
    torch.testing.assert_close(y.double(), rounded.double() @ dense.double().T, rtol=1e-5, atol=1e-4)
    # and against the fp32 product of the same weights, the activations' rounding costs ~0.5 %
    expected = x @ dense.T
    assert float((y - expected).norm() / expected.norm()) < 0.01


@pytest.mark.parametrize("n,k", [(96, 224), (48, 576)])  # a 64-wide step and a last group of 32; steps only
def test_q8_gemv_is_the_fp32_product_of_the_group_scaled_weights(n, k):
    """Each weight q * d + m (one rounding in fp32: q * d is exact), times x, summed in fp32."""
    weight = rand(n, k, scale=0.05)
    q, d, m = quantize_int8_minima(weight)
    x = rand(2, k, seed=1)
    y = torch.ops.pml.q8_gemv(x, q, d, m)
    assert y.dtype == torch.float32 and y.shape == (2, n)
    restored = (q.reshape(n, -1, INT8_GROUP).float() * d.float()[..., None] + m.float()[..., None]).reshape(n, k)
    torch.testing.assert_close(y.double(), x.double() @ restored.double().T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n,k", [(64, 96), (200, 1536)])
def test_a_row_among_many_gets_exactly_what_it_gets_alone(n, k):
    # the kernels take rows in tiles (batched decoding): 11 rows cross the tiles' edges
    weight = rand(n, k, scale=0.05)
    x = rand(11, k, seed=2)
    blocks = pack_int4_blocks(*quantize_int4(weight))
    q4 = torch.ops.pml.q4_blocks_gemv(x, blocks, n)
    assert torch.equal(q4, torch.cat([torch.ops.pml.q4_blocks_gemv(row[None], blocks, n) for row in x]))
    q8, d8, m8 = quantize_int8_minima(weight)
    y = torch.ops.pml.q8_gemv(x, q8, d8, m8)
    assert torch.equal(y, torch.cat([torch.ops.pml.q8_gemv(row[None], q8, d8, m8) for row in x]))


@pytest.mark.parametrize("n,k", [(64, 96), (40, 576)])  # a partial last block
def test_q8_blocks_gemv_is_the_q8_0_arithmetic_it_states_and_rows_do_not_mix(n, k):
    q, d = quantize_int8_groups(rand(n, k, scale=0.05))
    blocks = pack_int8_blocks(q, d)
    assert blocks.shape == (-(-n // 16), k // INT8_GROUP, 544)
    # block 0, group 1, chunk 3: row 2's inputs 12..15, shifted to unsigned bytes
    assert torch.equal(blocks[0, 1, 192 + 8 : 192 + 12].to(torch.int16) - 128, q[2, 32 + 12 : 32 + 16].to(torch.int16))
    x = rand(7, k, seed=1)
    y = torch.ops.pml.q8_blocks_gemv(x, blocks, n)
    xg = x.reshape(7, 1, k // INT8_GROUP, INT8_GROUP)
    scale = xg.abs().amax(-1) / 127
    xq = torch.round(xg * torch.where(scale > 0, 1 / scale, 0)[..., None]).to(torch.int64)
    dots = (q.reshape(1, n, k // INT8_GROUP, INT8_GROUP).to(torch.int64) * xq).sum(-1)
    torch.testing.assert_close(y.double(), (dots.double() * scale.double() * d.double()[None]).sum(-1), rtol=1e-5, atol=1e-5)
    assert torch.equal(y, torch.cat([torch.ops.pml.q8_blocks_gemv(row[None], blocks, n) for row in x]))


def test_rms_norm_and_silu_mul_match_torch():
    x, w = rand(3, 200), rand(200, seed=1)
    torch.testing.assert_close(torch.ops.pml.rms_norm(x, w, 1e-5), F.rms_norm(x, (200,), w, 1e-5), rtol=1e-5, atol=1e-6)
    gate_up = rand(2, 2 * 150, seed=2, scale=4)
    expected = F.silu(gate_up[:, :150]) * gate_up[:, 150:]
    torch.testing.assert_close(torch.ops.pml.silu_mul(gate_up), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("heads,kv_heads,hd", [(9, 3, 64), (4, 4, 32), (8, 2, 128)])
@pytest.mark.parametrize("end", [1, 17, 700])  # 700: long enough to use both threads
def test_attend_one_rotates_writes_the_cache_and_attends(heads, kv_heads, hd, end):
    room = end + 5
    keys, values = rand(kv_heads, room, hd, seed=1), rand(kv_heads, room, hd, seed=2)
    before_k, before_v = keys.clone(), values.clone()
    qkv = rand(1, (heads + 2 * kv_heads) * hd, seed=3)
    rotation = rope_rotations(hd, {"rope_type": "default", "rope_theta": 10000.0}, end)[end - 1 :]
    out = torch.ops.pml.attend_one(qkv, torch.view_as_real(rotation[0]), keys[:, :end], values[:, :end], heads)

    qk = apply_rotations(qkv[:, : (heads + kv_heads) * hd].view(1, heads + kv_heads, hd), rotation)[0]
    new_v = qkv[0, (heads + kv_heads) * hd :].view(kv_heads, hd)
    # the new key and value
    torch.testing.assert_close(keys[:, end - 1], qk[heads:], rtol=1e-6, atol=1e-6)
    assert torch.equal(values[:, end - 1], new_v)
    for cache, before in ((keys, before_k), (values, before_v)):  # nothing else in the cache moved
        assert torch.equal(cache[:, : end - 1], before[:, : end - 1]) and torch.equal(cache[:, end:], before[:, end:])
    q = qk[:heads].view(1, kv_heads, heads // kv_heads, hd)
    expected = F.scaled_dot_product_attention(q, keys[None, :, :end], values[None, :, :end])
    torch.testing.assert_close(out, expected.reshape(1, heads * hd), rtol=1e-5, atol=1e-5)


def test_attend_rows_gives_each_sequence_exactly_what_attend_one_gives_it():
    heads, kv_heads, hd, layers, max_len = 9, 3, 64, 2, 300
    ends = [1, 17, 300, 64]  # a first token, short and full caches
    caches = [(rand(layers, kv_heads, max_len, hd, seed=10 + b), rand(layers, kv_heads, max_len, hd, seed=20 + b))
              for b in range(len(ends))]
    qkv = rand(len(ends), (heads + 2 * kv_heads) * hd, seed=3)
    rotations = rand(len(ends), hd // 2, 2, seed=4)
    alone = [[t.clone() for t in cache] for cache in caches]
    expected = torch.cat([torch.ops.pml.attend_one(qkv[b : b + 1], rotations[b], k[1, :, :end], v[1, :, :end], heads)
                          for b, ((k, v), end) in enumerate(zip(alone, ends))])
    out = torch.ops.pml.attend_rows(qkv, rotations, [k for k, _ in caches], [v for _, v in caches], ends, 1, heads)
    assert torch.equal(out, expected)
    for (k, v), (k_alone, v_alone) in zip(caches, alone):  # the same key and value written, at layer 1 only
        assert torch.equal(k, k_alone) and torch.equal(v, v_alone)


def test_attend_one_refuses_a_cache_that_is_not_fp32():
    keys = values = torch.zeros(2, 4, 32, dtype=torch.float16)
    qkv, rotation = rand(1, 6 * 32), torch.zeros(16, 2)
    with pytest.raises(RuntimeError, match="attend_one: fp32 qkv, rotation and cache"):
        torch.ops.pml.attend_one(qkv, rotation, keys, values, 2)


@pytest.mark.parametrize("n", [64, 40])
def test_q4_dequant_gives_the_bf16_weights_torch_computes(n):
    q, d, m = quantize_int4(rand(n, 96, scale=0.05))
    expected = (q.reshape(n, -1, INT4_GROUP).float() * d.float()[..., None] + m.float()[..., None]).reshape(n, 96)
    assert torch.equal(torch.ops.pml.q4_blocks_dequant(pack_int4_blocks(q, d, m), n), expected.bfloat16())


def test_q8_dequant_gives_the_bf16_weights_torch_computes():
    q, d, m = quantize_int8_minima(rand(64, 96, scale=0.05))
    expected = (q.reshape(64, -1, INT8_GROUP).float() * d.float()[..., None] + m.float()[..., None]).reshape(64, 96)
    assert torch.equal(torch.ops.pml.q8_dequant(q, d, m), expected.bfloat16())


def test_without_the_cpu_flags_or_when_turned_off_pytorchs_kernels_serve(monkeypatch):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"avx2", "fma"})
    assert kernels.load.__wrapped__() is False
    monkeypatch.setattr(kernels, "cpu_flags", lambda: set(kernels.LIBRARIES["avx512"].needed_flags))
    monkeypatch.setenv("PML_KERNELS", "0")
    assert kernels.load.__wrapped__() is False


def test_a_failed_build_says_so_in_one_line_and_leaves_no_library(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    library = dataclasses.replace(kernels.chosen(), sources=(broken,))
    monkeypatch.setattr(kernels, "chosen", lambda: library)
    assert kernels.load.__wrapped__() is False
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("pimpmyllama: building") and len(lines) == 2
    assert lines[1].startswith("pimpmyllama: using PyTorch's kernels instead of its own (the kernels did not compile")
    assert kernels.cache_dir().is_dir() and [p for p in kernels.cache_dir().rglob("*")] == []  # no partial file either
