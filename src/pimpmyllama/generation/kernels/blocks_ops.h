// The ops q4_blocks_gemv, q8_blocks_gemv and q4_blocks_dequant (see ../blocks.cpp)
// around an instruction set's arithmetic: argument checks, the split of the blocks
// among threads and of the activation rows into tiles, and the ops' schemas and
// registration. Included at the end of each instruction set's blocks.cpp, after its
// anonymous namespace defines
//   kGroup, kRows, kBlockBytes, kQ8BlockBytes   the packed layouts (../blocks.cpp);
//   kQ4Tile, kQ8Tile                             activation rows per tile, at most;
//   Row, prepare(x, rows, groups)                the activations as the kernels read
//                                                them, one Row each in .rows;
//   q4_block_rows<T>, q8_block_rows<T>           (block, rows of a tile, groups, out):
//                                                T rows against one block, out[t][r];
//   q4_row_to_bf16(words, d, m, out)             one row's group of weights as bf16,
// and reopening that namespace (one per file) for the ops.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "tiles.h"

namespace {

// y [rows, n] from the rows of x, kTileRows at a time through
// kernel(tile size, block, rows of the tile, groups, out), for each block of 16 weight
// rows (blocks shared among ATen's threads, a block's weights kept in L1 while the
// tiles of x pass).
template <int kTileRows, typename Kernel>
at::Tensor by_blocks(const at::Tensor& x, const at::Tensor& packed, int64_t n, int64_t block_bytes, Kernel kernel) {
  const int64_t rows = x.size(0), count = packed.size(0), groups = packed.size(1);
  const auto xc = x.contiguous(), pc = packed.contiguous();
  const uint8_t* blocks = pc.data_ptr<uint8_t>();
  const auto prepared = prepare(xc.data_ptr<float>(), rows, groups);
  auto y = at::empty({rows, n}, x.options());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, count, 4, [&](int64_t begin, int64_t end) {
    const Row* tile[kTileRows];
    float out[kTileRows][kRows];
    for (int64_t b = begin; b < end; ++b) {
      const uint8_t* block = blocks + b * groups * block_bytes;
      const int64_t width = std::min(kRows, n - b * kRows);
      for (int64_t i = 0; i < rows; i += kTileRows) {
        const int64_t size = std::min<int64_t>(kTileRows, rows - i);
        for (int64_t t = 0; t < size; ++t) tile[t] = &prepared.rows[i + t];
        pml_kernels::with_tile_size<kTileRows>(size, [&](auto rows_now) { kernel(rows_now, block, tile, groups, out); });
        for (int64_t t = 0; t < size; ++t) std::copy(out[t], out[t] + width, yp + (i + t) * n + b * kRows);
      }
    }
  });
  return y;
}

void check_blocks(const at::Tensor& packed, int64_t block_bytes, const char* name) {
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == block_bytes, name,
              ": packed must be [blocks, groups, ", block_bytes, "] uint8");
}

void check(const at::Tensor& x, const at::Tensor& packed, int64_t n, int64_t block_bytes, const char* name) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, name, ": x must be 2-D fp32");
  check_blocks(packed, block_bytes, name);
  const int64_t blocks = packed.size(0), groups = packed.size(1);
  TORCH_CHECK(x.size(1) == groups * kGroup && n <= blocks * kRows && n > (blocks - 1) * kRows, name,
              ": x, packed and n do not match");
}

at::Tensor q4_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  check(x, packed, n, kBlockBytes, "q4_blocks_gemv");
  return by_blocks<kQ4Tile>(x, packed, n, kBlockBytes,
                            [](auto size, auto... args) { q4_block_rows<decltype(size)::value>(args...); });
}

at::Tensor q8_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  check(x, packed, n, kQ8BlockBytes, "q8_blocks_gemv");
  return by_blocks<kQ8Tile>(x, packed, n, kQ8BlockBytes,
                            [](auto size, auto... args) { q8_block_rows<decltype(size)::value>(args...); });
}

// The bf16 weights [n, k] (for prompts, whose many rows run faster as a dense
// product): q * d + m in fp32 (a product, then a sum, as torch computes it), rounded
// to the nearest even bf16, as torch's .to(bfloat16) does.
at::Tensor q4_blocks_dequant(const at::Tensor& packed, int64_t n) {
  check_blocks(packed, kBlockBytes, "q4_blocks_dequant");
  const int64_t blocks = packed.size(0), groups = packed.size(1), k = groups * kGroup;
  TORCH_CHECK(n <= blocks * kRows && n > (blocks - 1) * kRows, "q4_blocks_dequant: packed and n do not match");
  const auto pc = packed.contiguous();
  auto w = at::empty({n, k}, packed.options().dtype(at::kBFloat16));
  const uint8_t* pp = pc.data_ptr<uint8_t>();
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  at::parallel_for(0, blocks * groups, 16, [&](int64_t begin, int64_t end) {
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / groups, g = bg % groups;
      const uint8_t* block = pp + bg * kBlockBytes;
      const auto* d = reinterpret_cast<const uint16_t*>(block + 256);
      const auto* m = reinterpret_cast<const uint16_t*>(block + 288);
      for (int64_t r = 0; r < std::min(kRows, n - b * kRows); ++r)  // row r's word of each chunk: its 32 weights
        q4_row_to_bf16(reinterpret_cast<const int32_t*>(block) + r, d[r], m[r], wp + (b * kRows + r) * k + g * kGroup);
    }
  });
  return w;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pml, lib) {
  lib.def("q4_blocks_gemv(Tensor x, Tensor packed, int n) -> Tensor");
  lib.def("q4_blocks_dequant(Tensor packed, int n) -> Tensor");
  lib.def("q8_blocks_gemv(Tensor x, Tensor packed, int n) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("q4_blocks_gemv", &q4_blocks_gemv);
  lib.impl("q4_blocks_dequant", &q4_blocks_dequant);
  lib.impl("q8_blocks_gemv", &q8_blocks_gemv);
}
