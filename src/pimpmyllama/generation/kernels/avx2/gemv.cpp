// The int8 product for decoding on AVX2 CPUs, and the q8 weights as bf16: the same
// operations, numbers and op names as ../gemv.cpp (read it first),
//   y[i, r] = sum_k x[i, k] * w[r, k],  w = q * d per group of 32 (fp16 d),
// each 16-lane register of the AVX-512 kernel held as two 8-lane halves, so that
// every lane adds the same products in the same order and the reduction is
// _mm512_reduce_add_ps's: the results are bit for bit the AVX-512 kernel's.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "lanes.h"

namespace {

using namespace pml_avx2;

constexpr int64_t kGroup = 32;
constexpr int64_t kGrain = 64;  // weight rows per task at least
constexpr int64_t kRowBlock = 16;
constexpr int kTile = 2;  // two rows' 16 accumulators fill the 16 registers

// Up to kTile rows of x against one q8 row; accumulator u of the AVX-512 kernel is
// acc[t][u][0] (lanes 0..7) and acc[t][u][1] (lanes 8..15).
template <int T>
void q8_rows(const int8_t* q, const uint16_t* d, const float* const* x, int64_t k, float* out) {
  __m256 acc[T][4][2];
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < 4; ++u) acc[t][u][0] = acc[t][u][1] = _mm256_setzero_ps();
  auto add = [&](int64_t i, int u) {  // the 16 weights from i, of group i / 32, into accumulator u
    const __m256 scale = _mm256_set1_ps(_cvtsh_ss(d[i / kGroup]));
    for (int h = 0; h < 2; ++h) {
      const __m256 w = _mm256_mul_ps(int8_to_ps(q + i + 8 * h), scale);
      for (int t = 0; t < T; ++t) acc[t][u][h] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x[t] + i + 8 * h), acc[t][u][h]);
    }
  };
  int64_t i = 0;
  for (; i + 64 <= k; i += 64)
    for (int u = 0; u < 4; ++u) add(i + 16 * u, u);
  if (i < k) {
    add(i, 0);
    add(i + 16, 1);
  }
  for (int t = 0; t < T; ++t) {
    __m256 half[2];
    for (int h = 0; h < 2; ++h)
      half[h] = _mm256_add_ps(_mm256_add_ps(acc[t][0][h], acc[t][1][h]), _mm256_add_ps(acc[t][2][h], acc[t][3][h]));
    out[t] = sum16(half[0], half[1]);
  }
}

at::Tensor q8_gemv(const at::Tensor& x, const at::Tensor& q, const at::Tensor& d) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q8_gemv: x must be 2-D fp32");
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kChar, "q8_gemv: q must be 2-D int8");
  TORCH_CHECK(d.scalar_type() == at::kHalf, "q8_gemv: d must be fp16");
  const int64_t rows = x.size(0), k = x.size(1), n = q.size(0), groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && q.size(1) == k && d.numel() == n * groups, "q8_gemv: x, q and d do not match");
  const auto xc = x.contiguous(), qc = q.contiguous(), dc = d.contiguous();
  auto y = at::empty({rows, n}, x.options());
  const float* xp = xc.data_ptr<float>();
  const int8_t* qp = qc.data_ptr<int8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    const float* tile[kTile];
    float out[kTile];
    for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {  // a block of weight rows stays in L1 for all tiles
      const int64_t r1 = std::min(end, r0 + kRowBlock);
      for (int64_t i = 0; i < rows; i += kTile) {
        const int64_t count = std::min<int64_t>(kTile, rows - i);
        for (int64_t t = 0; t < count; ++t) tile[t] = xp + (i + t) * k;
        for (int64_t r = r0; r < r1; ++r) {
          if (count == 2)
            q8_rows<2>(qp + r * k, dp + r * groups, tile, k, out);
          else
            q8_rows<1>(qp + r * k, dp + r * groups, tile, k, out);
          for (int64_t t = 0; t < count; ++t) yp[(i + t) * n + r] = out[t];
        }
      }
    }
  });
  return y;
}

// The bf16 weights of q8 rows (for prompts): q * d in fp32 (exact), rounded to the
// nearest even bf16.
at::Tensor q8_dequant(const at::Tensor& q, const at::Tensor& d) {
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kChar, "q8_dequant: q must be 2-D int8");
  const int64_t n = q.size(0), k = q.size(1), groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && d.numel() == n * groups && d.scalar_type() == at::kHalf,
              "q8_dequant: q and d do not match");
  const auto qc = q.contiguous(), dc = d.contiguous();
  auto w = at::empty({n, k}, q.options().dtype(at::kBFloat16));
  const int8_t* qp = qc.data_ptr<int8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  at::parallel_for(0, n * groups, 256, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const __m256 scale = _mm256_set1_ps(_cvtsh_ss(dp[g]));
      for (int64_t i = 0; i < kGroup; i += 16) {
        const int8_t* src = qp + g * kGroup + i;
        to_bf16(_mm256_mul_ps(int8_to_ps(src), scale), _mm256_mul_ps(int8_to_ps(src + 8), scale), wp + g * kGroup + i);
      }
    }
  });
  return w;
}

}  // namespace

TORCH_LIBRARY(pml, lib) {
  lib.def("q8_gemv(Tensor x, Tensor q, Tensor d) -> Tensor");
  lib.def("q8_dequant(Tensor q, Tensor d) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("q8_gemv", &q8_gemv);
  lib.impl("q8_dequant", &q8_dequant);
}
