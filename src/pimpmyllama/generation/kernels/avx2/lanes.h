// Helpers for the AVX2 kernels: 16 fp32 lanes held as two 8-lane halves, so that a
// kernel can do per lane, and in its reductions, exactly what the AVX-512 kernel
// does with one 16-lane register (and so give the same bits).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace pml_avx2 {

// The sum of 16 lanes (lo: lanes 0..7, hi: 8..15) in the order GCC's
// _mm512_reduce_add_ps takes: the halves, then the 128-bit halves, then pairs.
inline float sum16(__m256 lo, __m256 hi) {
  const __m256 t3 = _mm256_add_ps(hi, lo);
  const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, _MM_SHUFFLE(1, 1, 1, 1)));
}

inline float max8(__m256 v) {  // a maximum is the same in any order
  __m128 m = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 1, 1, 1))));
}

inline int32_t sum8_epi32(__m256i v) {  // integer sums are exact in any order
  __m128i s = _mm_add_epi32(_mm256_extracti128_si256(v, 1), _mm256_castsi256_si128(v));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 1, 1, 1))));
}

// The first `left` of 8 lanes (all of them from 8 on, none at 0 or below), for
// _mm256_maskload_ps / _mm256_maskstore_ps: the AVX-512 kernels' masked tails.
inline __m256i lanes(int64_t left) {
  const int32_t n = left >= 8 ? 8 : (left <= 0 ? 0 : static_cast<int32_t>(left));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 16 fp32 values rounded to the nearest even bf16, as torch's .to(bfloat16) does.
inline void to_bf16(__m256 lo, __m256 hi, uint16_t* out) {
  auto round = [](__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd)), 16);
  };
  // packus keeps 0..65535 as it is and interleaves 128-bit halves: put them back in order
  const __m256i packed = _mm256_packus_epi32(round(lo), round(hi));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute4x64_epi64(packed, _MM_SHUFFLE(3, 1, 2, 0)));
}

// Eight 8-bit weights (0..255) widened to fp32.
inline __m256 uint8_to_ps(const uint8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

}  // namespace pml_avx2
