"""Weight-only quantization of linear layers, for single-token decoding on the CPU.

Decoding reads every weight once per token, so on a CPU its speed is set by the
bytes it reads and by how fast they turn into products: int8 reads a quarter of
fp32's bytes, int4 an eighth.

- int8: an fp16 scale and minimum per group of 32 inputs of a row: w ≈ q · d + m,
  q in [0, 255], where our kernels run; symmetric, w ≈ q · d with q in [-127, 127]
  (llama.cpp's Q8_0), for int4's 8-bit head (products with int8 activations, as
  llama.cpp computes its Q4_1 files' head); one scale per output row where our
  kernels do not run (PyTorch's int8 kernel takes those) or a row is not whole groups.
- int4: asymmetric, one fp16 scale and minimum per group of 32 inputs of a row:
  w ≈ q · d + m, q in [0, 15] (llama.cpp's Q4_1).

The products over these weights, and which kernels compute them, are in
products.py.
"""

import torch

INT4_GROUP = 32
INT8_GROUP = 32


ROWS_AT_A_TIME = 4096  # fp32 temporaries of a few MB, not of the whole matrix (peak memory at load)


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [N, K], scales [N]) with weight ≈ q * scales[:, None]."""
    q = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0])
    for start in range(0, weight.shape[0], ROWS_AT_A_TIME):
        w = weight[start : start + ROWS_AT_A_TIME].float()
        s = (w.abs().amax(dim=1) / 127).clamp(min=1e-10)
        q[start : start + ROWS_AT_A_TIME] = torch.round(w / s[:, None]).clamp(-127, 127)
        scales[start : start + ROWS_AT_A_TIME] = s
    return q, scales


def quantize_int8_groups(weight: torch.Tensor, group: int = INT8_GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [N, K], d fp16 [N, K/group]) with weight ≈ q * d, group by group; d is
    max|w| / 127 of the group, and each weight is rounded against the fp16 d that is kept."""
    n, k = weight.shape
    q = torch.empty(weight.shape, dtype=torch.int8)
    d = torch.empty(n, k // group, dtype=torch.float16)
    for start in range(0, n, ROWS_AT_A_TIME):
        w = weight[start : start + ROWS_AT_A_TIME].float().reshape(-1, k // group, group)
        kept = (w.abs().amax(dim=-1) / 127).half()
        inverse = torch.where(kept > 0, 1 / kept.float(), 0)
        q[start : start + ROWS_AT_A_TIME] = torch.round(w * inverse[..., None]).clamp(-127, 127).reshape(-1, k)
        d[start : start + ROWS_AT_A_TIME] = kept
    return q, d


def int8_groups_supported(weight: torch.Tensor, group: int = INT8_GROUP) -> bool:
    return weight.shape[1] % group == 0


def quantize_with_minima(weight: torch.Tensor, levels: int, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q [N, K] in 0..levels as uint8, scales fp16 [N, K/group], minima fp16 [N, K/group])
    with weight ≈ q * scale + minimum, group by group. Each weight is rounded against
    the fp16 scale and minimum that are kept, not the exact ones."""
    n, k = weight.shape
    q = torch.empty(weight.shape, dtype=torch.uint8)
    scales = torch.empty(n, k // group, dtype=torch.float16)
    minima = torch.empty(n, k // group, dtype=torch.float16)
    for start in range(0, n, ROWS_AT_A_TIME):
        rows = slice(start, start + ROWS_AT_A_TIME)
        w = weight[rows].float().reshape(-1, k // group, group)
        low, high = w.amin(dim=-1), w.amax(dim=-1)
        minima[rows] = low.half()
        scales[rows] = ((high - minima[rows].float()) / levels).clamp(min=1e-7).half()
        rounded = torch.round((w - minima[rows].float()[..., None]) / scales[rows].float()[..., None])
        q[rows] = rounded.clamp(0, levels).to(torch.uint8).reshape(-1, k)
    return q, scales, minima


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q in 0..15 (llama.cpp's Q4_1): quantize_with_minima's (q, scales, minima)."""
    return quantize_with_minima(weight, 15, group)


def quantize_int8_minima(weight: torch.Tensor, group: int = INT8_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q in 0..255, a scale and a minimum per group (Q4_1's form with 256 levels):
    quantize_with_minima's (q, scales, minima). Unlike Q8_0's symmetric grid it holds
    weights that were on a Q4_1 grid (the default model's) all but exactly."""
    return quantize_with_minima(weight, 255, group)


def pack_nibbles(q: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    """[N, K] values 0..15 -> [N, K/2] bytes: in each group, byte j holds q[j] in its
    low nibble and q[j + group/2] in its high one (the kernel's layout)."""
    n, k = q.shape
    g = q.reshape(n, k // group, group).to(torch.uint8)
    half = group // 2
    return (g[..., :half] | (g[..., half:] << 4)).reshape(n, k // 2)


def unpack_nibbles(packed: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    n, half_k = packed.shape
    g = packed.reshape(n, half_k * 2 // group, group // 2)
    return torch.cat([g & 15, g >> 4], dim=-1).reshape(n, half_k * 2)


def pack_int4_blocks(q: torch.Tensor, d: torch.Tensor, m: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    """The layout of kernels/blocks.cpp: q [N, K] (0..15), d and m fp16 [N, K/group]
    -> uint8 [ceil(N/16), K/group, 320]. For each block of 16 rows and each group,
    four chunks of 64 bytes (chunk c: byte 4 r + j = q[r][4c + j] | q[r][16 + 4c + j] << 4),
    then the 16 rows' d, then their m. Rows past N (the last block's padding) are zero."""
    n, k = q.shape
    groups, blocks = k // group, -(-n // 16)
    pad = blocks * 16 - n

    def rows16(t: torch.Tensor) -> torch.Tensor:  # [N, ...] -> [blocks, 16, ...], zero-padded
        return torch.cat([t, t.new_zeros((pad, *t.shape[1:]))]).reshape(blocks, 16, *t.shape[1:])

    g = rows16(q.to(torch.uint8)).reshape(blocks, 16, groups, group).permute(0, 2, 1, 3)  # [B, G, 16, 32]
    quarter = group // 8
    chunks = [g[..., quarter * c : quarter * (c + 1)] | (g[..., group // 2 + quarter * c : group // 2 + quarter * (c + 1)] << 4)
              for c in range(4)]
    nibbles = torch.stack(chunks, dim=2).reshape(blocks, groups, 256)
    scales = [rows16(t.contiguous()).permute(0, 2, 1).contiguous().view(torch.uint8) for t in (d, m)]  # [B, G, 32] bytes
    return torch.cat([nibbles, *scales], dim=-1).contiguous()


def pack_int8_blocks(q: torch.Tensor, d: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    """The q8 layout of kernels/blocks.cpp: q int8 [N, K], d fp16 [N, K/group] -> uint8
    [ceil(N/16), K/group, 544]. For each block of 16 rows and each group, eight chunks
    of 64 bytes (chunk c: byte 4 r + j = q[r][4c + j] + 128), then the 16 rows' d. Rows
    past N (the last block's padding) are zero."""
    n, k = q.shape
    groups, blocks = k // group, -(-n // 16)
    pad = blocks * 16 - n
    shifted = (q.to(torch.int16) + 128).to(torch.uint8)
    shifted = torch.cat([shifted, shifted.new_zeros(pad, k)]).reshape(blocks, 16, groups, group // 4, 4)
    chunks = shifted.permute(0, 2, 3, 1, 4).reshape(blocks, groups, group * 16)  # [B, G, chunk, row, j]
    scales = torch.cat([d, d.new_zeros(pad, groups)]).reshape(blocks, 16, groups).permute(0, 2, 1).contiguous()
    return torch.cat([chunks, scales.view(torch.uint8)], dim=-1).contiguous()


def unpack_int4_blocks(blocks: torch.Tensor, n: int, group: int = INT4_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of pack_int4_blocks: (q [N, K] uint8, d fp16 [N, K/group], m fp16 [N, K/group])."""
    count, groups, _ = blocks.shape
    nibbles = blocks[..., :256].reshape(count, groups, 4, 16, group // 8)  # [B, G, chunk, row, j]
    low, high = (nibbles & 15).permute(0, 3, 1, 2, 4), (nibbles >> 4).permute(0, 3, 1, 2, 4)  # [B, 16, G, 4, 8 / 4]
    q = torch.cat([low.reshape(count, 16, groups, group // 2), high.reshape(count, 16, groups, group // 2)], dim=-1)

    def scales(start: int) -> torch.Tensor:
        return blocks[..., start : start + 32].contiguous().view(torch.float16).permute(0, 2, 1).reshape(-1, groups)[:n]

    return q.reshape(count * 16, groups * group)[:n], scales(256), scales(288)


def int4_supported(weight: torch.Tensor, group: int = INT4_GROUP) -> bool:
    n, k = weight.shape
    return k % group == 0 and n % 16 == 0
