// The small operations of a single-token decoding step for AVX2 CPUs: the same ops,
// arguments and arithmetic as ../decode.cpp (read its header first). Each 16-lane
// register there is two 8-lane halves here, with the same operations per lane and
// _mm512_reduce_add_ps's order in every sum, and e^x is the same polynomial with 2^n
// made from its exponent bits (exact where _mm512_scalef_ps is, for results above
// ~1e-38): the results are those of the AVX-512 kernels, bit for bit but for e^x
// below that.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "lanes.h"

namespace {

using namespace pml_avx2;

// e^x for 8 lanes: 2^n * e^r with r = x - n ln 2 and a degree-7 Taylor polynomial.
inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.f)), _mm256_set1_ps(-88.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 5040);
  for (float c : {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f}) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  // n in [-127, 127]: 2^n from its biased exponent (0 at -127, where e^x < 1e-38)
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
}

// 16 lanes from p (the first `left` of them, zeros past), as two halves.
struct Lanes16 {
  __m256 lo, hi;
};
inline Lanes16 load16(const float* p, int64_t left) {
  if (left >= 16) return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
  return {_mm256_maskload_ps(p, lanes(left)), _mm256_maskload_ps(p + 8, lanes(left - 8))};
}
inline void store16(float* p, int64_t left, __m256 lo, __m256 hi) {
  if (left >= 16) {
    _mm256_storeu_ps(p, lo);
    _mm256_storeu_ps(p + 8, hi);
    return;
  }
  _mm256_maskstore_ps(p, lanes(left), lo);
  _mm256_maskstore_ps(p + 8, lanes(left - 8), hi);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const Lanes16 x = load16(a + i, n - i), y = load16(b + i, n - i);
    lo = _mm256_fmadd_ps(x.lo, y.lo, lo);
    hi = _mm256_fmadd_ps(x.hi, y.hi, hi);
  }
  return sum16(lo, hi);
}

// rms_norm's row once its scale is known: out = x * scale * w over d values.
void scale_row(const float* x, const float* w, float scale, int64_t d, float* out) {
  const __m256 s = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < d; i += 8) {
    const __m256i k = lanes(d - i);
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, k), s), _mm256_maskload_ps(w + i, k));
    _mm256_maskstore_ps(out + i, k, v);
  }
}

void silu_mul_row(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = lanes(n - i);
    const __m256 g = _mm256_maskload_ps(gate + i, k), u = _mm256_maskload_ps(up + i, k);
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(silu, u));
  }
}
constexpr int64_t kMaxGroup = 16;   // query heads per kv head
constexpr int64_t kMaxChunks = 16;  // 16-float chunks of head_dim: up to 256

// One token's attention over one kv head's cache slices, as ../decode.cpp's
// attend_kv_head_as computes it (the same arguments; G and C, when not 0, fix the
// group size and hd / 16 at compile time).
template <int G, int C>
void attend_kv_head_as(const float* q, const float* kh, int64_t ks1, const float* vh, int64_t vs1, int64_t end,
                       int64_t group_given, int64_t hd_given, float* out, std::vector<float>& p) {
  const int64_t group = G ? G : group_given, chunks = C ? C : hd_given / 16, hd = 16 * chunks;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  p.resize(group * end);
  for (int64_t t = 0; t < end; ++t) {  // scores: each key row read once for the group
    const float* key = kh + t * ks1;
    for (int64_t j = 0; j < group; ++j) {
      __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
      for (int64_t c = 0; c < chunks; ++c) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(q + j * hd + 16 * c), _mm256_loadu_ps(key + 16 * c), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(q + j * hd + 16 * c + 8), _mm256_loadu_ps(key + 16 * c + 8), hi);
      }
      p[j * end + t] = sum16(lo, hi) * scale;
    }
  }
  float inverse[kMaxGroup];
  for (int64_t j = 0; j < group; ++j) {  // softmax per query
    float* pj = p.data() + j * end;
    __m256 top = _mm256_set1_ps(-INFINITY);
    for (int64_t t = 0; t < end; t += 8)
      top = _mm256_max_ps(top, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(pj + t, lanes(end - t)),
                                                _mm256_castsi256_ps(lanes(end - t))));
    const __m256 shift = _mm256_set1_ps(max8(top));
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t t = 0; t < end; t += 16) {
      const Lanes16 s = load16(pj + t, end - t);
      const __m256 e_lo = _mm256_and_ps(exp8(_mm256_sub_ps(s.lo, shift)), _mm256_castsi256_ps(lanes(end - t)));
      const __m256 e_hi = _mm256_and_ps(exp8(_mm256_sub_ps(s.hi, shift)), _mm256_castsi256_ps(lanes(end - t - 8)));
      store16(pj + t, end - t, e_lo, e_hi);
      lo = _mm256_add_ps(lo, e_lo);
      hi = _mm256_add_ps(hi, e_hi);
    }
    inverse[j] = 1.f / sum16(lo, hi);
  }
  // weighted values: each value row read once for the group
  constexpr int64_t kHalves = 2 * (C ? C : kMaxChunks);
  __m256 acc[G ? G : kMaxGroup][kHalves];
  for (int64_t j = 0; j < group; ++j)
    for (int64_t c = 0; c < 2 * chunks; ++c) acc[j][c] = _mm256_setzero_ps();
  for (int64_t t = 0; t < end; ++t) {
    const float* value = vh + t * vs1;
    for (int64_t j = 0; j < group; ++j) {
      const __m256 w = _mm256_set1_ps(p[j * end + t]);
      for (int64_t c = 0; c < 2 * chunks; ++c) acc[j][c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 8 * c), acc[j][c]);
    }
  }
  for (int64_t j = 0; j < group; ++j)
    for (int64_t c = 0; c < 2 * chunks; ++c)
      _mm256_storeu_ps(out + j * hd + 8 * c, _mm256_mul_ps(acc[j][c], _mm256_set1_ps(inverse[j])));
}

// Compiled for head_dim 64 (hd / 16 = 4) and up to 4 query heads per kv head (what 16
// registers hold): decode_ops.h's attend_kv_head_for.
constexpr int kCompiledGroup = 4, kCompiledChunks = 4;

}  // namespace

#include "../decode_ops.h"  // the ops around the functions above, and their registration
