// The int8 product for decoding on AVX2 CPUs, and the q8 weights as bf16: the same
// operations, numbers and op names as ../gemv.cpp (read it first),
//   y[i, r] = sum_k x[i, k] * w[r, k],  w = q * d + m per group of 32 (fp16 d and m),
// each 16-lane register of the AVX-512 kernel held as two 8-lane halves, so that
// every lane adds the same products in the same order and the reduction is
// _mm512_reduce_add_ps's: the results are bit for bit the AVX-512 kernel's.
#include <immintrin.h>

#include <cstdint>

#include "lanes.h"

namespace {

using namespace pml_avx2;

constexpr int64_t kGroup = 32;
constexpr int kTile = 2;  // two rows' 16 accumulators fill the 16 registers

// Up to kTile rows of x against one q8 row; accumulator u of the AVX-512 kernel is
// acc[t][u][0] (lanes 0..7) and acc[t][u][1] (lanes 8..15).
template <int T>
void q8_rows(const uint8_t* q, const uint16_t* d, const uint16_t* m, const float* const* x, int64_t k, float* out) {
  __m256 acc[T][4][2];
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < 4; ++u) acc[t][u][0] = acc[t][u][1] = _mm256_setzero_ps();
  auto add = [&](int64_t i, int u) {  // the group of 32 weights from i into accumulators u and u + 1
    const __m256 scale = _mm256_set1_ps(_cvtsh_ss(d[i / kGroup])), minimum = _mm256_set1_ps(_cvtsh_ss(m[i / kGroup]));
    for (int v = 0; v < 2; ++v)
      for (int h = 0; h < 2; ++h) {
        const __m256 w = _mm256_fmadd_ps(uint8_to_ps(q + i + 16 * v + 8 * h), scale, minimum);
        for (int t = 0; t < T; ++t)
          acc[t][u + v][h] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x[t] + i + 16 * v + 8 * h), acc[t][u + v][h]);
      }
  };
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) {
    add(i, 0);
    add(i + 32, 2);
  }
  if (i < k) add(i, 0);
  for (int t = 0; t < T; ++t) {
    __m256 half[2];
    for (int h = 0; h < 2; ++h)
      half[h] = _mm256_add_ps(_mm256_add_ps(acc[t][0][h], acc[t][1][h]), _mm256_add_ps(acc[t][2][h], acc[t][3][h]));
    out[t] = sum16(half[0], half[1]);
  }
}

// One group's 32 weights q * d + m (one rounding in fp32) as bf16.
inline void q8_group_to_bf16(const uint8_t* q, uint16_t d, uint16_t m, uint16_t* out) {
  const __m256 scale = _mm256_set1_ps(_cvtsh_ss(d)), minimum = _mm256_set1_ps(_cvtsh_ss(m));
  for (int64_t i = 0; i < kGroup; i += 16)
    to_bf16(_mm256_fmadd_ps(uint8_to_ps(q + i), scale, minimum), _mm256_fmadd_ps(uint8_to_ps(q + i + 8), scale, minimum),
            out + i);
}

}  // namespace

#include "../gemv_ops.h"  // q8_gemv and q8_dequant around the functions above, and their registration
