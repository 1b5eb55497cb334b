// The int4 and int8 products on weights packed 16 rows at a time, for AVX2 CPUs
// (no VNNI): the same layouts, arithmetic and op names as ../blocks.cpp (read its
// header first). A block's 16 rows are two 8-lane halves here, lane r one row, and
// a group's integer dot products come from _mm256_maddubs_epi16 (unsigned bytes
// times signed bytes, adjacent pairs summed to int16) and _mm256_madd_epi16 with
// ones (pairs of those to int32), as llama.cpp's AVX2 paths compute them:
//   q4: weights 0..15 times activations -127..127: a pair is at most 3810, so the
//       eight chunks' pairs of a group add up in int16 (at most 30480) before one
//       madd;
//   q8: the +128 of the layout would overflow maddubs' int16, so the signed weight
//       is recovered (xor 0x80), its magnitude taken as the unsigned side and its
//       sign moved onto the activation (_mm256_sign_epi8): pairs of at most
//       2 * 128 * 127 = 32512, exact.
// Each group's dot product is thus the same integer as vpdpbusd's, and the fp32
// steps after it (and the activations' rounding, and their sums, in order) are the
// AVX-512 kernel's per lane: the results are bit for bit the same.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "../tiles.h"
#include "lanes.h"

namespace {

using namespace pml_avx2;

constexpr int64_t kGroup = 32, kRows = 16, kBlockBytes = 320, kQ8BlockBytes = 544;
constexpr int kQ4Tile = 4, kQ8Tile = 4;  // rows of x per pass over a block, at most (measured on the default model's layers)

struct Row {
  const int8_t* q;
  const float *scale, *sum;
};

struct Prepared {
  std::vector<int8_t> q;
  std::vector<float> scale, sum;
  std::vector<Row> rows;
};

// x [rows, groups * 32] rounded to int8 per group (scale max|x| / 127, to the nearest
// even integer), with each group's scale and the sum of its rounded values — as
// ../blocks.cpp prepares them.
Prepared prepare(const float* x, int64_t rows, int64_t groups) {
  Prepared a{std::vector<int8_t>(rows * groups * kGroup), std::vector<float>(rows * groups),
             std::vector<float>(rows * groups), std::vector<Row>(rows)};
  const __m256 sign = _mm256_set1_ps(-0.f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < rows * groups; ++i) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + i * kGroup + 8 * j);
    const __m256 top = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                     _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    const float scale = max8(top) / 127.f;
    const __m256 inverse = _mm256_set1_ps(scale > 0.f ? 1.f / scale : 0.f);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], inverse));
    // |q| <= 127: the saturating packs keep the values; then undo their lane interleaving
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.q.data() + i * kGroup), _mm256_permutevar8x32_epi32(bytes, order));
    a.scale[i] = scale;
    int32_t qsum = 0;  // the rounded group's sum, as ../blocks.cpp takes it (see its header)
    for (int j = 0; j < kGroup; ++j) qsum += a.q[i * kGroup + j];
    a.sum[i] = scale * static_cast<float>(qsum);
  }
  for (int64_t r = 0; r < rows; ++r)
    a.rows[r] = Row{a.q.data() + r * groups * kGroup, a.scale.data() + r * groups, a.sum.data() + r * groups};
  return a;
}

inline __m256i four(const int8_t* q) { return _mm256_set1_epi32(*reinterpret_cast<const int32_t*>(q)); }

// T rows of x against one q4 block of 16 weight rows: out[t][r]. A chunk's two
// halves are unpacked once for the tile, and each row's four activations once for
// both halves.
template <int T>
void q4_block_rows(const uint8_t* block, const Row* const* x, int64_t groups, float (*out)[kRows]) {
  const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  __m256 total[T][2];
  for (int t = 0; t < T; ++t) total[t][0] = total[t][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, block += kBlockBytes) {
    pml_kernels::prefetch(block + groups * kBlockBytes, kBlockBytes);  // the next block's group g
    __m256i pairs[T][2];
    for (int t = 0; t < T; ++t) pairs[t][0] = pairs[t][1] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i low[2], high[2];  // rows 0..7, rows 8..15
      for (int h = 0; h < 2; ++h) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * c + 32 * h));
        low[h] = _mm256_and_si256(bytes, low4);
        high[h] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
      }
      for (int t = 0; t < T; ++t) {
        const int8_t* q = x[t]->q + g * kGroup;
        const __m256i first = four(q + 4 * c), second = four(q + 16 + 4 * c);
        for (int h = 0; h < 2; ++h)
          pairs[t][h] = _mm256_add_epi16(pairs[t][h], _mm256_add_epi16(_mm256_maddubs_epi16(low[h], first),
                                                                       _mm256_maddubs_epi16(high[h], second)));
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 256 + 16 * h)));
      const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 288 + 16 * h)));
      for (int t = 0; t < T; ++t) {
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs[t][h], ones));
        total[t][h] = _mm256_fmadd_ps(dot, _mm256_mul_ps(d, _mm256_set1_ps(x[t]->scale[g])), total[t][h]);
        total[t][h] = _mm256_fmadd_ps(m, _mm256_set1_ps(x[t]->sum[g]), total[t][h]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out[t] + 8 * h, total[t][h]);
}

// T rows of x against one q8 block of 16 weight rows: out[t][r]. A chunk's two
// halves are made signed once for the tile, each row's activations broadcast once
// for both halves.
template <int T>
void q8_block_rows(const uint8_t* block, const Row* const* x, int64_t groups, float (*out)[kRows]) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  __m256 total[T][2];
  for (int t = 0; t < T; ++t) total[t][0] = total[t][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, block += kQ8BlockBytes) {
    pml_kernels::prefetch(block + groups * kQ8BlockBytes, kQ8BlockBytes);  // the next block's group g
    __m256i dots[T][2];
    for (int t = 0; t < T; ++t) dots[t][0] = dots[t][1] = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      __m256i w[2], size[2];  // rows 0..7, rows 8..15
      for (int h = 0; h < 2; ++h) {
        w[h] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * c + 32 * h)), flip);
        size[h] = _mm256_abs_epi8(w[h]);  // -128 becomes the unsigned 128
      }
      for (int t = 0; t < T; ++t) {
        const __m256i xq = four(x[t]->q + g * kGroup + 4 * c);
        for (int h = 0; h < 2; ++h)
          dots[t][h] = _mm256_add_epi32(
              dots[t][h], _mm256_madd_epi16(_mm256_maddubs_epi16(size[h], _mm256_sign_epi8(xq, w[h])), ones));
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 512 + 16 * h)));
      for (int t = 0; t < T; ++t)
        total[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[t][h]), _mm256_mul_ps(d, _mm256_set1_ps(x[t]->scale[g])),
                                      total[t][h]);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out[t] + 8 * h, total[t][h]);
}

// One row's group of q4 weights, q * d + m, as bf16: `words` its word of the first
// chunk (the others 16 words apart), low nibbles its inputs 0..15 in order, high ones 16..31.
inline void q4_row_to_bf16(const int32_t* words, uint16_t d, uint16_t m, uint16_t* out) {
  const __m256i lo = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, words[16], words[0]));
  const __m256i hi = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, words[48], words[32]));
  const __m256 scale = _mm256_set1_ps(_cvtsh_ss(d)), minimum = _mm256_set1_ps(_cvtsh_ss(m));
  const __m256i low4 = _mm256_set1_epi32(15);
  auto weights = [&](__m256i q) { return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), scale), minimum); };
  to_bf16(weights(_mm256_and_si256(lo, low4)), weights(_mm256_and_si256(hi, low4)), out);
  to_bf16(weights(_mm256_srli_epi32(lo, 4)), weights(_mm256_srli_epi32(hi, 4)), out + 16);
}

}  // namespace

#include "../blocks_ops.h"  // the ops around the functions above, and their registration
