// Quantized products for decoding, on weights laid out sixteen rows at a time:
// y[i, r] = sum_k x[i, k] * w[r, k], x rounded to int8 per group of 32 (scale
// max|x| / 127, as llama.cpp does) so that a group's dot product is exact integer
// arithmetic (vpdpbusd), then in fp32, group after group:
//   q4 (llama.cpp's Q4_1: w = q * d + m, q in 0..15, d and m fp16):
//     y[i, r] = sum over groups of  dot * (d * scale)  +  m * (scale * qsum)
//     where qsum is the group's integer sum of the rounded x (llama.cpp's Q8_1 keeps
//     the same s = d * sum(q)): y is then the dequantized weights times the rounded
//     activations. The exact sum of x in its place looks finer but is worse: it
//     weighs each activation's rounding error by w - m (never negative, up to 15 d)
//     instead of by w (centred), and on the default model it took top-1 agreement
//     with fp32 at every position from 96.5 % to 91.3 %, perplexity +0.06 % to +1.42 %;
//   q8 (llama.cpp's Q8_0, as its int8 heads compute: w = q * d, q int8, d fp16):
//     y[i, r] = sum over groups of  dot * (d * scale).
//
// q4 layout (quant.pack_int4_blocks): for each block of 16 rows and each group, 320 bytes —
// four chunks of 64 bytes, chunk c holding at byte 4 r + j the weight q[r][4c + j]
// in its low nibble and q[r][16 + 4c + j] in its high one, then the 16 rows' d and
// their 16 m (fp16). One vpdpbusd then takes four inputs of all 16 rows at once, and
// each lane of the accumulator is one row: a group's products become one exact
// integer per row, scaled once per group — where a row-at-a-time layout has to
// convert and scale 16 partial sums of the same row. (llama.cpp's repacked CPU
// formats interleave rows for the same reason.)
// q8 layout (quant.pack_int8_blocks): for each block of 16 rows and each group, 544
// bytes — eight chunks of 64 bytes, chunk c holding at byte 4 r + j the weight
// q[r][4c + j] + 128 (vpdpbusd multiplies unsigned by signed bytes; the 128 times
// the group's integer sum of x is taken back, exactly), then the 16 rows' d.
//
// A batch's rows (decoding sequences) go through each block a tile at a time, the
// weights unpacked once per tile (up to 8 rows for q4, 4 for q8, whose unpacked block
// leaves fewer registers: measured on the default model); each row's arithmetic is the
// same in any tile, so every row gets exactly the numbers it would get alone.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "tiles.h"

namespace {

constexpr int64_t kGroup = 32, kRows = 16, kBlockBytes = 320, kQ8BlockBytes = 544;
constexpr int kQ4Tile = 8, kQ8Tile = 4;  // rows per tile, at most

// The rows of activations, as the kernels read them: int8 values in their natural
// order, and each group's scale, the sum of its int8 values and that sum times the scale. `Row` is one
// row's view into them.
struct Row {
  const int8_t* q;
  const float *scale, *sum;
  const int32_t* qsum;
};

struct Prepared {
  std::vector<int8_t> q;
  std::vector<float> scale, sum;
  std::vector<int32_t> qsum;
  std::vector<Row> rows;
};

// x [rows, groups * 32] rounded to int8 per group (scale max|x| / 127, to the nearest
// even integer as std::nearbyint rounds), two vectors per group; sums of the rounded values.
Prepared prepare(const float* x, int64_t rows, int64_t groups) {
  Prepared a{std::vector<int8_t>(rows * groups * kGroup), std::vector<float>(rows * groups),
             std::vector<float>(rows * groups), std::vector<int32_t>(rows * groups), std::vector<Row>(rows)};
  for (int64_t i = 0; i < rows * groups; ++i) {
    const __m512 lo = _mm512_loadu_ps(x + i * kGroup), hi = _mm512_loadu_ps(x + i * kGroup + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float scale = amax / 127.f;
    const __m512 inverse = _mm512_set1_ps(scale > 0.f ? 1.f / scale : 0.f);
    const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inverse)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inverse));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a.q.data() + i * kGroup), _mm512_cvtepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a.q.data() + i * kGroup + 16), _mm512_cvtepi32_epi8(qhi));
    a.qsum[i] = _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
    a.scale[i] = scale;
    a.sum[i] = scale * static_cast<float>(a.qsum[i]);  // the rounded group's sum (see the header)
  }
  for (int64_t r = 0; r < rows; ++r)
    a.rows[r] = Row{a.q.data() + r * groups * kGroup, a.scale.data() + r * groups, a.sum.data() + r * groups,
                    a.qsum.data() + r * groups};
  return a;
}

inline __m512i four(const int8_t* q) { return _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(q)); }

// T rows of x against one block of 16 weight rows: out[t][r].
template <int T>
void q4_block_rows(const uint8_t* block, const Row* const* x, int64_t groups, float (*out)[kRows]) {
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 total[T];
  for (int t = 0; t < T; ++t) total[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, block += kBlockBytes) {
    pml_kernels::prefetch(block + groups * kBlockBytes, kBlockBytes);  // the next block's group g
    __m512i low[4], high[4];
    for (int c = 0; c < 4; ++c) {
      const __m512i bytes = _mm512_loadu_si512(block + 64 * c);
      low[c] = _mm512_and_si512(bytes, low4);
      high[c] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 256)));
    const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 288)));
    for (int t = 0; t < T; ++t) {
      const int8_t* q = x[t]->q + g * kGroup;
      __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();  // two chains; integer sums are exact
      for (int c = 0; c < 4; ++c) {
        even = _mm512_dpbusd_epi32(even, low[c], four(q + 4 * c));
        odd = _mm512_dpbusd_epi32(odd, high[c], four(q + 16 + 4 * c));
      }
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even, odd));
      total[t] = _mm512_fmadd_ps(dot, _mm512_mul_ps(d, _mm512_set1_ps(x[t]->scale[g])), total[t]);
      total[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x[t]->sum[g]), total[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], total[t]);
}

// T rows of x against one q8 block of 16 weight rows: out[t][r].
template <int T>
void q8_block_rows(const uint8_t* block, const Row* const* x, int64_t groups, float (*out)[kRows]) {
  __m512 total[T];
  for (int t = 0; t < T; ++t) total[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, block += kQ8BlockBytes) {
    pml_kernels::prefetch(block + groups * kQ8BlockBytes, kQ8BlockBytes);  // the next block's group g
    __m512i w[8];
    for (int c = 0; c < 8; ++c) w[c] = _mm512_loadu_si512(block + 64 * c);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 512)));
    for (int t = 0; t < T; ++t) {
      const int8_t* q = x[t]->q + g * kGroup;
      __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();  // two chains; integer sums are exact
      for (int c = 0; c < 8; c += 2) {
        even = _mm512_dpbusd_epi32(even, w[c], four(q + 4 * c));
        odd = _mm512_dpbusd_epi32(odd, w[c + 1], four(q + 4 * c + 4));
      }
      const __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(even, odd), _mm512_set1_epi32(128 * x[t]->qsum[g]));
      total[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(x[t]->scale[g])), total[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], total[t]);
}

// 16 fp32 values rounded to the nearest even bf16, as torch's .to(bfloat16) does.
inline void to_bf16(__m512 v, uint16_t* out) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i rounded = _mm512_add_epi32(
      bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
}

// One row's group of q4 weights, q * d + m, as bf16: `words` its word of the first
// chunk (the others 16 words apart), low nibbles its inputs 0..15 in order, high ones 16..31.
inline void q4_row_to_bf16(const int32_t* words, uint16_t d, uint16_t m, uint16_t* out) {
  const __m512i q = _mm512_cvtepu8_epi32(_mm_set_epi32(words[48], words[32], words[16], words[0]));
  const __m512 scale = _mm512_set1_ps(_cvtsh_ss(d)), minimum = _mm512_set1_ps(_cvtsh_ss(m));
  const __m512i low4 = _mm512_set1_epi32(15);
  to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, low4)), scale), minimum), out);
  to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4)), scale), minimum), out + 16);
}

}  // namespace

#include "blocks_ops.h"  // the ops around the functions above, and their registration
