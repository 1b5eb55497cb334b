// The ops q8_gemv and q8_dequant (see ../gemv.cpp) around an instruction set's
// arithmetic: argument checks, the split of the work among threads and the tiles of
// activation rows, and the ops' schemas and registration. Included at the end of each
// instruction set's gemv.cpp, after its anonymous namespace defines
//   kGroup, kTile                      weights per group; activation rows per tile, at most;
//   q8_rows<T>(q, d, m, x, k, out)     T rows x[t] against one q8 row: out[t];
//   q8_group_to_bf16(q, d, m, out)     one group's 32 weights q * d + m as bf16,
// and reopening that namespace (one per file) for the ops.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "tiles.h"

namespace {

constexpr int64_t kGrain = 64;  // weight rows per task at least: enough work to wake a thread for

// Weight rows are taken a block at a time, and for each tile of activation rows the
// whole block: a tile's activations stay in L1 while the block's rows pass (a batch
// of 32 rows' activations is larger than L1 and would be read from L2 for every
// weight row). The tiles are the same whatever the block, so results are too.
constexpr int64_t kRowBlock = 16;

at::Tensor q8_gemv(const at::Tensor& x, const at::Tensor& q, const at::Tensor& d, const at::Tensor& m) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q8_gemv: x must be 2-D fp32");
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kByte, "q8_gemv: q must be 2-D uint8");
  TORCH_CHECK(d.scalar_type() == at::kHalf && m.scalar_type() == at::kHalf, "q8_gemv: d and m must be fp16");
  const int64_t rows = x.size(0), k = x.size(1), n = q.size(0), groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && q.size(1) == k && d.numel() == n * groups && m.numel() == n * groups,
              "q8_gemv: x, q, d and m do not match");
  const auto xc = x.contiguous(), qc = q.contiguous(), dc = d.contiguous(), mc = m.contiguous();
  auto y = at::empty({rows, n}, x.options());
  const float* xp = xc.data_ptr<float>();
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  const auto* mp = reinterpret_cast<const uint16_t*>(mc.data_ptr<at::Half>());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    const float* tile[kTile];
    float out[kTile];
    for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
      const int64_t r1 = std::min(end, r0 + kRowBlock);
      for (int64_t i = 0; i < rows; i += kTile) {
        const int64_t count = std::min<int64_t>(kTile, rows - i);
        for (int64_t t = 0; t < count; ++t) tile[t] = xp + (i + t) * k;
        pml_kernels::with_tile_size<kTile>(count, [&](auto size) {
          for (int64_t r = r0; r < r1; ++r) {
            q8_rows<decltype(size)::value>(qp + r * k, dp + r * groups, mp + r * groups, tile, k, out);
            for (int64_t t = 0; t < count; ++t) yp[(i + t) * n + r] = out[t];
          }
        });
      }
    }
  });
  return y;
}

// The bf16 weights of q8 rows (for prompts): q * d + m in fp32 (one rounding), rounded
// to the nearest even bf16.
at::Tensor q8_dequant(const at::Tensor& q, const at::Tensor& d, const at::Tensor& m) {
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kByte, "q8_dequant: q must be 2-D uint8");
  const int64_t n = q.size(0), k = q.size(1), groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && d.numel() == n * groups && d.scalar_type() == at::kHalf && m.numel() == n * groups &&
                  m.scalar_type() == at::kHalf,
              "q8_dequant: q, d and m do not match");
  const auto qc = q.contiguous(), dc = d.contiguous(), mc = m.contiguous();
  auto w = at::empty({n, k}, q.options().dtype(at::kBFloat16));
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  const auto* mp = reinterpret_cast<const uint16_t*>(mc.data_ptr<at::Half>());
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  at::parallel_for(0, n * groups, 256, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) q8_group_to_bf16(qp + g * kGroup, dp[g], mp[g], wp + g * kGroup);
  });
  return w;
}

}  // namespace

TORCH_LIBRARY(pml, lib) {
  lib.def("q8_gemv(Tensor x, Tensor q, Tensor d, Tensor m) -> Tensor");
  lib.def("q8_dequant(Tensor q, Tensor d, Tensor m) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("q8_gemv", &q8_gemv);
  lib.impl("q8_dequant", &q8_dequant);
}
