// The int8 product for decoding on the CPU (AVX-512):
// y[i, r] = sum_k x[i, k] * w[r, k], for a few rows x of fp32 activations, with
// w = q * s, q int8, one fp32 scale per row; fp32 products. (int4: q4_blocks.cpp.)
//
// Weight rows are shared among ATen's threads; the rows of x (a batch of decoding
// sequences) go through each weight row a tile at a time, the weights converted once
// per tile, and every row of x gets exactly the numbers it would get alone.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kGrain = 64;  // rows per task at least: enough work to wake a thread for
constexpr int kTile = 4;

// Weight rows are taken a block at a time, and for each tile of activation rows the
// whole block: a tile's activations stay in L1 while the block's rows pass (a batch
// of 32 rows' activations is larger than L1 and would be read from L2 for every
// weight row). The tiles are the same whatever the block, so results are too.
constexpr int64_t kRowBlock = 16;

template <typename Tile>
void by_blocks(int64_t begin, int64_t end, int64_t rows, Tile tile) {
  for (int64_t r0 = begin; r0 < end; r0 += kRowBlock) {
    const int64_t r1 = std::min(end, r0 + kRowBlock);
    for (int64_t i = 0; i < rows; i += kTile) tile(r0, r1, i, std::min<int64_t>(kTile, rows - i));
  }
}

// Up to kTile rows of x against one q8 row: each 16 weights converted to fp32 once for
// all of them; each row's sums in the same order whatever the tile (four accumulators
// over 64-wide steps, the tail into the first, then one reduction).
template <int T>
void q8_rows(const int8_t* q, const float* const* x, int64_t k, float* out) {
  __m512 acc[T][4];
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= k; i += 64)
    for (int u = 0; u < 4; ++u) {
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i + 16 * u))));
      for (int t = 0; t < T; ++t) acc[t][u] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + i + 16 * u), acc[t][u]);
    }
  for (; i < k; i += 16) {
    const __mmask16 mask = k - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (k - i)) - 1);
    const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, q + i)));
    for (int t = 0; t < T; ++t) acc[t][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mask, x[t] + i), acc[t][0]);
  }
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
}

at::Tensor q8_gemv(const at::Tensor& x, const at::Tensor& q, const at::Tensor& scales) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q8_gemv: x must be 2-D fp32");
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kChar, "q8_gemv: q must be 2-D int8");
  TORCH_CHECK(scales.scalar_type() == at::kFloat, "q8_gemv: scales must be fp32");
  const int64_t rows = x.size(0), k = x.size(1), n = q.size(0);
  TORCH_CHECK(q.size(1) == k && scales.numel() == n, "q8_gemv: x, q and scales do not match");
  const auto xc = x.contiguous(), qc = q.contiguous(), sc = scales.contiguous();
  auto y = at::empty({rows, n}, x.options());
  const float* xp = xc.data_ptr<float>();
  const int8_t* qp = qc.data_ptr<int8_t>();
  const float* sp = sc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    const float* tile[kTile];
    float out[kTile];
    by_blocks(begin, end, rows, [&](int64_t r0, int64_t r1, int64_t i, int64_t count) {
      for (int64_t t = 0; t < count; ++t) tile[t] = xp + (i + t) * k;
      for (int64_t r = r0; r < r1; ++r) {
        switch (count) {
          case 4: q8_rows<4>(qp + r * k, tile, k, out); break;
          case 3: q8_rows<3>(qp + r * k, tile, k, out); break;
          case 2: q8_rows<2>(qp + r * k, tile, k, out); break;
          default: q8_rows<1>(qp + r * k, tile, k, out); break;
        }
        for (int64_t t = 0; t < count; ++t) yp[(i + t) * n + r] = out[t] * sp[r];
      }
    });
  });
  return y;
}

}  // namespace

TORCH_LIBRARY(pml, lib) { lib.def("q8_gemv(Tensor x, Tensor q, Tensor scales) -> Tensor"); }

TORCH_LIBRARY_IMPL(pml, CPU, lib) { lib.impl("q8_gemv", &q8_gemv); }
