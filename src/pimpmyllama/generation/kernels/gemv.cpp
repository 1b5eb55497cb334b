// Weight-only quantized products for decoding on the CPU (AVX-512 with VNNI):
// y[i, r] = sum_k x[i, k] * w[r, k], for a few rows x of fp32 activations.
//
// q4: groups of 32 weights of a row, w = q * d + m with q in 0..15 and d, m fp16
//     (llama.cpp's Q4_1). A group's 16 bytes hold q[j] in the low nibble of byte j
//     and q[j + 16] in its high nibble. The activations are rounded to int8 per
//     group of 32 (as llama.cpp does for Q4_1), so that a group's dot product is
//     one integer instruction (vpdpbusd) on 4-bit weights and 8-bit activations;
//     the minimum's share, m * sum(x), uses the exact fp32 sums of x.
// q8: groups of 32 weights of a row, w = q * d with q int8 and d fp16 (llama.cpp's
//     Q8_0 grid); fp32 products of the fp32 activations and the weights q * d.
//
// Weight rows are shared among ATen's threads; the rows of x (a batch of decoding
// sequences) go through each weight row a tile at a time, the weights unpacked once
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

// One row of activations, prepared for q4 rows: int8 values in the order the
// weights unpack to (per pair of groups g, g+1: x[g][0:16], x[g+1][0:16],
// x[g][16:32], x[g+1][16:32]), each lane's scale in the same order, exact sums.
struct Activations {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<float> sum;
};

Activations prepare(const float* x, int64_t groups) {
  const int64_t pairs = (groups + 1) / 2;
  Activations a{std::vector<int8_t>(pairs * 64, 0), std::vector<float>(pairs * 16, 0.f),
                std::vector<float>(groups, 0.f)};
  for (int64_t g = 0; g < groups; ++g) {
    const float* xg = x + g * kGroup;
    float amax = 0.f, sum = 0.f;
    for (int j = 0; j < kGroup; ++j) {
      amax = std::fmax(amax, std::fabs(xg[j]));
      sum += xg[j];
    }
    const float scale = amax / 127.f;
    const float inverse = scale > 0.f ? 1.f / scale : 0.f;
    const int64_t pair = g / 2, half = g % 2;
    int8_t* out = a.q.data() + pair * 64 + half * 16;
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<int8_t>(std::nearbyint(xg[j] * inverse));
      out[j + 32] = static_cast<int8_t>(std::nearbyint(xg[j + 16] * inverse));
    }
    for (int lane = 0; lane < 4; ++lane) {
      a.scale[pair * 16 + half * 4 + lane] = scale;
      a.scale[pair * 16 + 8 + half * 4 + lane] = scale;
    }
    a.sum[g] = sum;
  }
  return a;
}

// Two groups' weights as 64 bytes: low nibbles of both, then high nibbles of both.
inline __m512i unpack_pair(__m256i bytes) {
  const __m256i low4 = _mm256_set1_epi8(15);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bytes, low4)),
                            _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4), 1);
}

// Each group's fp16 scale over its lanes: d[0] on lanes 0-3 and 8-11, d[1] on 4-7 and 12-15.
inline __m512 pair_scales(const uint16_t* d, bool both) {
  const __m512i spread = _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
  const int bits = both ? *reinterpret_cast<const int32_t*>(d) : d[0];
  return _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(bits))));
}

// Up to kTile rows of activations against one q4 row at a time: a pair of groups is
// unpacked once for all of them (a batch of decoding sequences). Each row's arithmetic
// is the same, in the same order, whatever the tile: even pairs into one accumulator,
// odd ones into another, the minima into the first, then one reduction — so a row's
// result does not depend on the rows decoded beside it.
constexpr int kTile = 4;

template <int T>
void q4_rows(const uint8_t* q, const uint16_t* d, const uint16_t* m, const Activations* const* a, int64_t groups,
             float* out) {
  __m512 total0[T], total1[T];
  for (int t = 0; t < T; ++t) total0[t] = total1[t] = _mm512_setzero_ps();
  auto add = [&](__m512* total, int64_t p, bool both) {
    const uint8_t* qp = q + p * 32;
    const __m256i bytes = both ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qp))
                               : _mm256_maskz_loadu_epi8(0xFFFF, qp);
    const __m512i w = unpack_pair(bytes);
    const __m512 ds = pair_scales(d + p * 2, both);
    for (int t = 0; t < T; ++t) {
      const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(a[t]->q.data() + p * 64));
      total[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dots), _mm512_loadu_ps(a[t]->scale.data() + p * 16)),
                                 ds, total[t]);
    }
  };
  const int64_t full = groups / 2;
  int64_t p = 0;
  for (; p + 1 < full; p += 2) {
    add(total0, p, true);
    add(total1, p + 1, true);
  }
  for (; p < full; ++p) add(total0, p, true);
  if (groups % 2) add(total1, p, false);
  for (int64_t g = 0; g < groups; g += 16) {  // the minima: sum over groups of m * sum(x)
    const __mmask16 k = groups - g >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (groups - g)) - 1);
    const __m512 minima = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, m + g));
    for (int t = 0; t < T; ++t) total0[t] = _mm512_fmadd_ps(minima, _mm512_maskz_loadu_ps(k, a[t]->sum.data() + g), total0[t]);
  }
  for (int t = 0; t < T; ++t) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(total0[t], total1[t]));
}

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

// Rows are read one after another; asking for a row a few ahead keeps the loads
// from waiting on memory.
constexpr int64_t kAhead = 12;

inline void prefetch_row(const uint8_t* q, int64_t q_bytes, const void* d, const void* m, int64_t scale_bytes) {
  for (int64_t b = 0; b < q_bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(q) + b, _MM_HINT_T0);
  for (int64_t b = 0; b < scale_bytes; b += 64) {
    _mm_prefetch(static_cast<const char*>(d) + b, _MM_HINT_T0);
    _mm_prefetch(static_cast<const char*>(m) + b, _MM_HINT_T0);
  }
}

at::Tensor q4_gemv(const at::Tensor& x, const at::Tensor& q, const at::Tensor& d, const at::Tensor& m) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q4_gemv: x must be 2-D fp32");
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kByte, "q4_gemv: q must be 2-D uint8");
  TORCH_CHECK(d.scalar_type() == at::kHalf && m.scalar_type() == at::kHalf, "q4_gemv: d and m must be fp16");
  const int64_t rows = x.size(0), k = x.size(1), n = q.size(0), groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && q.size(1) * 2 == k, "q4_gemv: x and q do not match");
  TORCH_CHECK(d.numel() == n * groups && m.numel() == n * groups, "q4_gemv: d or m has the wrong size");
  const auto xc = x.contiguous(), qc = q.contiguous(), dc = d.contiguous(), mc = m.contiguous();
  std::vector<Activations> prepared;
  for (int64_t i = 0; i < rows; ++i) prepared.push_back(prepare(xc.data_ptr<float>() + i * k, groups));
  auto y = at::empty({rows, n}, x.options());
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  const auto* mp = reinterpret_cast<const uint16_t*>(mc.data_ptr<at::Half>());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    const Activations* tile[kTile];
    float out[kTile];
    by_blocks(begin, end, rows, [&](int64_t r0, int64_t r1, int64_t i, int64_t count) {
      for (int64_t t = 0; t < count; ++t) tile[t] = &prepared[i + t];
      for (int64_t r = r0; r < r1; ++r) {
        if (i == 0 && r + kAhead < end)  // the first tile brings each row in: ask for it early
          prefetch_row(qp + (r + kAhead) * (k / 2), k / 2, dp + (r + kAhead) * groups, mp + (r + kAhead) * groups,
                       groups * 2);
        const uint8_t* qr = qp + r * (k / 2);
        const uint16_t *dr = dp + r * groups, *mr = mp + r * groups;
        switch (count) {
          case 4: q4_rows<4>(qr, dr, mr, tile, groups, out); break;
          case 3: q4_rows<3>(qr, dr, mr, tile, groups, out); break;
          case 2: q4_rows<2>(qr, dr, mr, tile, groups, out); break;
          default: q4_rows<1>(qr, dr, mr, tile, groups, out); break;
        }
        for (int64_t t = 0; t < count; ++t) yp[(i + t) * n + r] = out[t];
      }
    });
  });
  return y;
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

// The bf16 weights of q4 rows (for prompts, whose many rows run faster as a dense
// product): q * d + m in fp32 (a product, then a sum, as torch computes it), rounded
// to the nearest even bf16, as torch's .to(bfloat16) does.
at::Tensor q4_dequant(const at::Tensor& q, const at::Tensor& d, const at::Tensor& m) {
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kByte, "q4_dequant: q must be 2-D uint8");
  const int64_t n = q.size(0), k = q.size(1) * 2, groups = k / kGroup;
  TORCH_CHECK(k % kGroup == 0 && d.numel() == n * groups && m.numel() == n * groups &&
                  d.scalar_type() == at::kHalf && m.scalar_type() == at::kHalf,
              "q4_dequant: q, d and m do not match");
  const auto qc = q.contiguous(), dc = d.contiguous(), mc = m.contiguous();
  auto w = at::empty({n, k}, q.options().dtype(at::kBFloat16));
  const uint8_t* qp = qc.data_ptr<uint8_t>();
  const auto* dp = reinterpret_cast<const uint16_t*>(dc.data_ptr<at::Half>());
  const auto* mp = reinterpret_cast<const uint16_t*>(mc.data_ptr<at::Half>());
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  const __m512i low4 = _mm512_set1_epi32(15);
  at::parallel_for(0, n * groups, 256, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qp + g * 16)));
      const __m512 scale = _mm512_set1_ps(_cvtsh_ss(dp[g])), minimum = _mm512_set1_ps(_cvtsh_ss(mp[g]));
      to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(b, low4)), scale), minimum), wp + g * kGroup);
      to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)), scale), minimum), wp + g * kGroup + 16);
    }
  });
  return w;
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
  lib.def("q4_gemv(Tensor x, Tensor q, Tensor d, Tensor m) -> Tensor");
  lib.def("q8_gemv(Tensor x, Tensor q, Tensor d) -> Tensor");
  lib.def("q4_dequant(Tensor q, Tensor d, Tensor m) -> Tensor");
  lib.def("q8_dequant(Tensor q, Tensor d) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("q4_gemv", &q4_gemv);
  lib.impl("q8_gemv", &q8_gemv);
  lib.impl("q4_dequant", &q4_dequant);
  lib.impl("q8_dequant", &q8_dequant);
}
