// The int8 product for decoding on the CPU (AVX-512; blocks.cpp has the same on weights laid out 16 rows at a time, and int4):
// y[i, r] = sum_k x[i, k] * w[r, k], for a few rows x of fp32 activations.
//
// q8: groups of 32 weights of a row, w = q * d + m with q in 0..255 and d, m fp16 (an
//     8-bit grid with a minimum, quant.quantize_int8_minima); fp32 products of the fp32
//     activations and the weights q * d + m (one fused multiply-add: q * d is exact in
//     fp32, so each weight is rounded once).
//
// Weight rows are shared among ATen's threads; the rows of x (a batch of decoding
// sequences) go through each weight row a tile at a time, the weights converted once
// per tile, and every row of x gets exactly the numbers it would get alone.
#include <immintrin.h>

#include <cstdint>

namespace {

constexpr int64_t kGroup = 32;
constexpr int kTile = 4;

// Up to kTile rows of x against one q8 row: each 16 weights converted to fp32 once
// for all of them (q * d + m); each row's sums in the same order
// whatever the tile (four accumulators over 64-wide steps, the last group's 32 into the
// first two, then one reduction).
template <int T>
void q8_rows(const uint8_t* q, const uint16_t* d, const uint16_t* m, const float* const* x, int64_t k, float* out) {
  __m512 acc[T][4];
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < 4; ++u) acc[t][u] = _mm512_setzero_ps();
  auto add = [&](int64_t i, int u) {  // the group of 32 weights from i into accumulators u and u + 1
    const __m512 scale = _mm512_set1_ps(_cvtsh_ss(d[i / kGroup])), minimum = _mm512_set1_ps(_cvtsh_ss(m[i / kGroup]));
    for (int h = 0; h < 2; ++h) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i + 16 * h));
      const __m512 w = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), scale, minimum);
      for (int t = 0; t < T; ++t) acc[t][u + h] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + i + 16 * h), acc[t][u + h]);
    }
  };
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) {
    add(i, 0);
    add(i + 32, 2);
  }
  if (i < k) add(i, 0);
  for (int t = 0; t < T; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
}

// 16 fp32 values rounded to the nearest even bf16, as torch's .to(bfloat16) does.
inline void to_bf16(__m512 v, uint16_t* out) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i rounded = _mm512_add_epi32(
      bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
}

// One group's 32 weights q * d + m (one rounding in fp32) as bf16.
inline void q8_group_to_bf16(const uint8_t* q, uint16_t d, uint16_t m, uint16_t* out) {
  const __m512 scale = _mm512_set1_ps(_cvtsh_ss(d)), minimum = _mm512_set1_ps(_cvtsh_ss(m));
  for (int half = 0; half < 2; ++half) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * half))));
    to_bf16(_mm512_fmadd_ps(v, scale, minimum), out + 16 * half);
  }
}

}  // namespace

#include "gemv_ops.h"  // q8_gemv and q8_dequant around the functions above, and their registration
