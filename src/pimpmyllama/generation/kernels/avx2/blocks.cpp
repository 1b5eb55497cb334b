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
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "lanes.h"

namespace {

using namespace pml_avx2;

constexpr int64_t kGroup = 32, kRows = 16, kBlockBytes = 320, kQ8BlockBytes = 544;
constexpr int64_t kTile = 4;  // rows of x per pass over a block, at most (measured on the default model's layers)

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
// even integer), with each group's scale and fp32 sum — as ../blocks.cpp prepares them.
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
    float sum = 0.f;  // in order, one value after another, as ../blocks.cpp sums them
    for (int j = 0; j < kGroup; ++j) sum += x[i * kGroup + j];
    a.sum[i] = sum;
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

using BlockKernel = void (*)(const uint8_t*, const Row* const*, int64_t, float (*)[kRows]);

// y [rows, n] from the rows of x, kTile at a time through `kernels[tile size - 1]`,
// for each block of 16 weight rows (blocks shared among ATen's threads).
at::Tensor by_blocks(const at::Tensor& x, const at::Tensor& packed, int64_t n, int64_t block_bytes,
                     const BlockKernel (&kernels)[kTile]) {
  const int64_t rows = x.size(0), count = packed.size(0), groups = packed.size(1);
  const auto xc = x.contiguous(), pc = packed.contiguous();
  const uint8_t* blocks = pc.data_ptr<uint8_t>();
  const Prepared prepared = prepare(xc.data_ptr<float>(), rows, groups);
  auto y = at::empty({rows, n}, x.options());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, count, 4, [&](int64_t begin, int64_t end) {
    const Row* tile[kTile];
    float out[kTile][kRows];
    for (int64_t b = begin; b < end; ++b) {
      const int64_t width = std::min(kRows, n - b * kRows);
      for (int64_t i = 0; i < rows; i += kTile) {
        const int64_t size = std::min(kTile, rows - i);
        for (int64_t t = 0; t < size; ++t) tile[t] = &prepared.rows[i + t];
        kernels[size - 1](blocks + b * groups * block_bytes, tile, groups, out);
        for (int64_t t = 0; t < size; ++t) std::copy(out[t], out[t] + width, yp + (i + t) * n + b * kRows);
      }
    }
  });
  return y;
}

void check(const at::Tensor& x, const at::Tensor& packed, int64_t n, int64_t block_bytes, const char* name) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, name, ": x must be 2-D fp32");
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == block_bytes, name,
              ": packed must be [blocks, groups, ", block_bytes, "] uint8");
  const int64_t blocks = packed.size(0), groups = packed.size(1);
  TORCH_CHECK(x.size(1) == groups * kGroup && n <= blocks * kRows && n > (blocks - 1) * kRows, name,
              ": x, packed and n do not match");
}

at::Tensor q4_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  check(x, packed, n, kBlockBytes, "q4_blocks_gemv");
  static const BlockKernel kernels[kTile] = {&q4_block_rows<1>, &q4_block_rows<2>, &q4_block_rows<3>, &q4_block_rows<4>};
  return by_blocks(x, packed, n, kBlockBytes, kernels);
}

at::Tensor q8_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  check(x, packed, n, kQ8BlockBytes, "q8_blocks_gemv");
  static const BlockKernel kernels[kTile] = {&q8_block_rows<1>, &q8_block_rows<2>, &q8_block_rows<3>, &q8_block_rows<4>};
  return by_blocks(x, packed, n, kQ8BlockBytes, kernels);
}

// The bf16 weights [n, k] (for prompts): q * d + m in fp32 (a product, then a sum, as
// torch computes it), rounded to the nearest even bf16.
at::Tensor q4_blocks_dequant(const at::Tensor& packed, int64_t n) {
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == kBlockBytes,
              "q4_blocks_dequant: packed must be [blocks, groups, 320] uint8");
  const int64_t blocks = packed.size(0), groups = packed.size(1), k = groups * kGroup;
  TORCH_CHECK(n <= blocks * kRows && n > (blocks - 1) * kRows, "q4_blocks_dequant: packed and n do not match");
  const auto pc = packed.contiguous();
  auto w = at::empty({n, k}, packed.options().dtype(at::kBFloat16));
  const uint8_t* pp = pc.data_ptr<uint8_t>();
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  const __m256i low4 = _mm256_set1_epi32(15);
  at::parallel_for(0, blocks * groups, 16, [&](int64_t begin, int64_t end) {
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / groups, g = bg % groups;
      const uint8_t* block = pp + bg * kBlockBytes;
      const auto* d = reinterpret_cast<const uint16_t*>(block + 256);
      const auto* m = reinterpret_cast<const uint16_t*>(block + 288);
      for (int64_t r = 0; r < std::min(kRows, n - b * kRows); ++r) {
        // row r's word of each chunk: low nibbles are its inputs 0..15 in order, high ones 16..31
        const auto* word = reinterpret_cast<const int32_t*>(block) + r;
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, word[16], word[0]));
        const __m256i hi = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, word[48], word[32]));
        const __m256 scale = _mm256_set1_ps(_cvtsh_ss(d[r])), minimum = _mm256_set1_ps(_cvtsh_ss(m[r]));
        auto weights = [&](__m256i q) { return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), scale), minimum); };
        uint16_t* out = wp + (b * kRows + r) * k + g * kGroup;
        to_bf16(weights(_mm256_and_si256(lo, low4)), weights(_mm256_and_si256(hi, low4)), out);
        to_bf16(weights(_mm256_srli_epi32(lo, 4)), weights(_mm256_srli_epi32(hi, 4)), out + 16);
      }
    }
  });
  return w;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pml, lib) {
  lib.def("q4_blocks_gemv(Tensor x, Tensor packed, int n) -> Tensor");
  lib.def("q4_blocks_dequant(Tensor packed, int n) -> Tensor");
  lib.def("q8_blocks_gemv(Tensor x, Tensor packed, int n) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("q4_blocks_gemv", &q4_blocks_gemv);
  lib.impl("q4_blocks_dequant", &q4_blocks_dequant);
  lib.impl("q8_blocks_gemv", &q8_blocks_gemv);
}
