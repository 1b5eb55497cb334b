// Quantized products for decoding, on weights laid out sixteen rows at a time:
// y[i, r] = sum_k x[i, k] * w[r, k], x rounded to int8 per group of 32 (scale
// max|x| / 127, as llama.cpp does) so that a group's dot product is exact integer
// arithmetic (vpdpbusd), then in fp32, group after group:
//   q4 (llama.cpp's Q4_1: w = q * d + m, q in 0..15, d and m fp16):
//     y[i, r] = sum over groups of  dot * (d * scale)  +  m * sum(x group)
//     (the x group's sum exact in fp32);
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
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kGroup = 32, kRows = 16, kBlockBytes = 320, kQ8BlockBytes = 544, kTile = 8;
constexpr int64_t kQ4Tile = 8, kQ8Tile = 4;  // rows per tile, at most kTile

// The rows of activations, as the kernels read them: int8 values in their natural
// order, and each group's scale, sum and the sum of its int8 values. `Row` is one
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
// even integer as std::nearbyint rounds), two vectors per group.
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
    float sum = 0.f;  // in order, one value after another: the arithmetic the kernel states
    for (int j = 0; j < kGroup; ++j) sum += x[i * kGroup + j];
    a.sum[i] = sum;
  }
  for (int64_t r = 0; r < rows; ++r)
    a.rows[r] = Row{a.q.data() + r * groups * kGroup, a.scale.data() + r * groups, a.sum.data() + r * groups,
                    a.qsum.data() + r * groups};
  return a;
}

inline __m512i four(const int8_t* q) { return _mm512_set1_epi32(*reinterpret_cast<const int32_t*>(q)); }

// T rows of x against one block of 16 weight rows: out[t][r].
template <int T>
void block_rows(const uint8_t* block, const Row* const* x, int64_t groups, float (*out)[kRows]) {
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 total[T];
  for (int t = 0; t < T; ++t) total[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, block += kBlockBytes) {
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

// A block's kernel for a tile of 1 to kTile rows, by its size.
template <typename Kernel>
struct Tiles {
  void operator()(const uint8_t* block, const Row* const* tile, int64_t size, int64_t groups, float (*out)[kRows]) const {
    switch (size) {
      case 8: Kernel::template run<8>(block, tile, groups, out); break;
      case 7: Kernel::template run<7>(block, tile, groups, out); break;
      case 6: Kernel::template run<6>(block, tile, groups, out); break;
      case 5: Kernel::template run<5>(block, tile, groups, out); break;
      case 4: Kernel::template run<4>(block, tile, groups, out); break;
      case 3: Kernel::template run<3>(block, tile, groups, out); break;
      case 2: Kernel::template run<2>(block, tile, groups, out); break;
      default: Kernel::template run<1>(block, tile, groups, out); break;
    }
  }
};

struct Q4Kernel {
  template <int T>
  static void run(const uint8_t* b, const Row* const* x, int64_t g, float (*o)[kRows]) { block_rows<T>(b, x, g, o); }
};

struct Q8Kernel {
  template <int T>
  static void run(const uint8_t* b, const Row* const* x, int64_t g, float (*o)[kRows]) { q8_block_rows<T>(b, x, g, o); }
};

// y [rows, n] from the rows of x through `tile(block, rows of a tile, count, out)` for
// each block of 16 weight rows (blocks shared among ATen's threads, a block's weights
// kept in L1 while the tiles of x pass).
template <typename Tile>
at::Tensor by_blocks(const at::Tensor& x, const uint8_t* blocks, int64_t count, int64_t block_bytes, int64_t n,
                     Tile tile, int64_t tile_rows) {
  const int64_t rows = x.size(0), k = x.size(1), groups = k / kGroup;
  const auto xc = x.contiguous();
  const Prepared prepared = prepare(xc.data_ptr<float>(), rows, groups);
  auto y = at::empty({rows, n}, x.options());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, count, 4, [&](int64_t begin, int64_t end) {
    const Row* rows_of_tile[kTile];
    float out[kTile][kRows];
    for (int64_t b = begin; b < end; ++b) {
      const uint8_t* block = blocks + b * groups * block_bytes;
      const int64_t width = std::min(kRows, n - b * kRows);
      for (int64_t i = 0; i < rows; i += tile_rows) {
        const int64_t size = std::min(tile_rows, rows - i);
        for (int64_t t = 0; t < size; ++t) rows_of_tile[t] = &prepared.rows[i + t];
        tile(block, rows_of_tile, size, groups, out);
        for (int64_t t = 0; t < size; ++t) std::copy(out[t], out[t] + width, yp + (i + t) * n + b * kRows);
      }
    }
  });
  return y;
}

at::Tensor q8_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q8_blocks_gemv: x must be 2-D fp32");
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == kQ8BlockBytes,
              "q8_blocks_gemv: packed must be [blocks, groups, 544] uint8");
  const int64_t blocks = packed.size(0), groups = packed.size(1);
  TORCH_CHECK(x.size(1) == groups * kGroup && n <= blocks * kRows && n > (blocks - 1) * kRows,
              "q8_blocks_gemv: x, packed and n do not match");
  const auto pc = packed.contiguous();
  return by_blocks(x, pc.data_ptr<uint8_t>(), blocks, kQ8BlockBytes, n,
                   Tiles<Q8Kernel>(), kQ8Tile);
}

at::Tensor q4_blocks_gemv(const at::Tensor& x, const at::Tensor& packed, int64_t n) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "q4_blocks_gemv: x must be 2-D fp32");
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == kBlockBytes,
              "q4_blocks_gemv: packed must be [blocks, groups, 320] uint8");
  const int64_t blocks = packed.size(0), groups = packed.size(1);
  TORCH_CHECK(x.size(1) == groups * kGroup && n <= blocks * kRows && n > (blocks - 1) * kRows,
              "q4_blocks_gemv: x, packed and n do not match");
  const auto pc = packed.contiguous();
  return by_blocks(x, pc.data_ptr<uint8_t>(), blocks, kBlockBytes, n,
                   Tiles<Q4Kernel>(), kQ4Tile);
}

// The bf16 weights [n, k] (for prompts, whose many rows run faster as a dense
// product): q * d + m in fp32 (a product, then a sum, as torch computes it), rounded
// to the nearest even bf16, as torch's .to(bfloat16) does.
at::Tensor q4_blocks_dequant(const at::Tensor& packed, int64_t n) {
  TORCH_CHECK(packed.dim() == 3 && packed.scalar_type() == at::kByte && packed.size(2) == kBlockBytes,
              "q4_blocks_dequant: packed must be [blocks, groups, 320] uint8");
  const int64_t blocks = packed.size(0), groups = packed.size(1), k = groups * kGroup;
  TORCH_CHECK(n <= blocks * kRows && n > (blocks - 1) * kRows, "q4_blocks_dequant: packed and n do not match");
  const auto pc = packed.contiguous();
  auto w = at::empty({n, k}, packed.options().dtype(at::kBFloat16));
  const uint8_t* pp = pc.data_ptr<uint8_t>();
  auto* wp = reinterpret_cast<uint16_t*>(w.data_ptr<at::BFloat16>());
  const __m512i low4 = _mm512_set1_epi32(15), one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7FFF);
  auto to_bf16 = [&](__m512 v, uint16_t* out) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(bits, 16), one)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
  };
  at::parallel_for(0, blocks * groups, 16, [&](int64_t begin, int64_t end) {
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / groups, g = bg % groups;
      const uint8_t* block = pp + bg * kBlockBytes;
      const auto* d = reinterpret_cast<const uint16_t*>(block + 256);
      const auto* m = reinterpret_cast<const uint16_t*>(block + 288);
      for (int64_t r = 0; r < std::min(kRows, n - b * kRows); ++r) {
        // row r's word of each chunk: low nibbles are its inputs 0..15 in order, high ones 16..31
        const auto* word = reinterpret_cast<const int32_t*>(block) + r;
        const __m512i q = _mm512_cvtepu8_epi32(_mm_set_epi32(word[48], word[32], word[16], word[0]));
        const __m512 scale = _mm512_set1_ps(_cvtsh_ss(d[r])), minimum = _mm512_set1_ps(_cvtsh_ss(m[r]));
        uint16_t* out = wp + (b * kRows + r) * k + g * kGroup;
        to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, low4)), scale), minimum), out);
        to_bf16(_mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4)), scale), minimum), out + 16);
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
