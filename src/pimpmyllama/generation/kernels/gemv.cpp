// The int8 product for decoding on the CPU (AVX-512; blocks.cpp has the same on weights laid out 16 rows at a time, and int4):
// y[i, r] = sum_k x[i, k] * w[r, k], for a few rows x of fp32 activations.
//
// q8: groups of 32 weights of a row, w = q * d with q int8 and d fp16 (llama.cpp's
//     Q8_0 grid); fp32 products of the fp32 activations and the weights q * d.
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

constexpr int64_t kGroup = 32;
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

// Up to kTile rows of x against one q8 row: each 16 weights converted to fp32 and
// scaled (q * d, exact in fp32) once for all of them; each row's sums in the same order
// whatever the tile (four accumulators over 64-wide steps, the last group's 32 into the
// first two, then one reduction).
template <int T>
void q8_rows(const int8_t* q, const uint16_t* d, const float* const* x, int64_t k, float* out) {
  __m512 acc[T][4];
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
  auto add = [&](int64_t i, int u) {  // the 16 weights from i, of group i / 32, into accumulator u
    const __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)))),
                                   _mm512_set1_ps(_cvtsh_ss(d[i / kGroup])));
    for (int t = 0; t < T; ++t) acc[t][u] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + i), acc[t][u]);
  };
  int64_t i = 0;
  for (; i + 64 <= k; i += 64)
    for (int u = 0; u < 4; ++u) add(i + 16 * u, u);
  if (i < k) {
    add(i, 0);
    add(i + 16, 1);
  }
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
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
    by_blocks(begin, end, rows, [&](int64_t r0, int64_t r1, int64_t i, int64_t count) {
      for (int64_t t = 0; t < count; ++t) tile[t] = xp + (i + t) * k;
      for (int64_t r = r0; r < r1; ++r) {
        const int8_t* qr = qp + r * k;
        const uint16_t* dr = dp + r * groups;
        switch (count) {
          case 4: q8_rows<4>(qr, dr, tile, k, out); break;
          case 3: q8_rows<3>(qr, dr, tile, k, out); break;
          case 2: q8_rows<2>(qr, dr, tile, k, out); break;
          default: q8_rows<1>(qr, dr, tile, k, out); break;
        }
        for (int64_t t = 0; t < count; ++t) yp[(i + t) * n + r] = out[t];
      }
    });
  });
  return y;
}

// 16 fp32 values rounded to the nearest even bf16, as torch's .to(bfloat16) does.
inline void to_bf16(__m512 v, uint16_t* out) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i rounded = _mm512_add_epi32(
      bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
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
      const __m512 scale = _mm512_set1_ps(_cvtsh_ss(dp[g]));
      for (int half = 0; half < 2; ++half) {
        const int8_t* src = qp + g * kGroup + 16 * half;
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
        to_bf16(_mm512_mul_ps(v, scale), wp + g * kGroup + 16 * half);
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
