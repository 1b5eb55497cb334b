// The small operations of a single-token decoding step, each as one call: on two
// cores, PyTorch's versions cost more in dispatch and threading than in arithmetic
// (RMS norm is five operations there; attention for one query is SDPA's flash
// kernel, built for long queries). fp32 arithmetic.
//
// rms_norm(x, w, eps):       x * w / sqrt(mean(x^2) + eps), row by row.
// silu_mul(gate_up):         silu(gate) * up, the halves of each row.
// attend_one(qkv, rotation, keys, values, heads):
//     qkv [1, (H + 2 KV) * hd] is one token's fused projection, q and k in the pair
//     layout (dims 2i and 2i+1 rotate together); rotation [hd / 2, 2] its position's
//     cos and sin. Rotates q and k, writes k and v into the fp32 cache views
//     keys/values [KV, end, hd] at their last position, and returns
//     softmax(q kᵀ / sqrt(hd)) v over all `end` positions, as [1, H * hd], query
//     head h reading kv head h / (H / KV).
// attend_rows(qkv, rotations, keys, values, ends, layer, heads):
//     attend_one for one new token of each of several sequences, in one call.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// e^x for 16 lanes: 2^n * e^r with r = x - n ln 2 in [-ln2/2, ln2/2] and a degree-7
// Taylor polynomial for e^r (relative error ~1e-7); x below -87 gives 0.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.f)), _mm512_set1_ps(-88.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040);
  for (float c : {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// rms_norm's row once its scale is known: out = x * scale * w over d values.
void scale_row(const float* x, const float* w, float scale, int64_t d, float* out) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < d; i += 16) {
    const __mmask16 k = tail_mask(d - i);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s), _mm512_maskz_loadu_ps(k, w + i));
    _mm512_mask_storeu_ps(out + i, k, v);
  }
}

void silu_mul_row(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i), u = _mm512_maskz_loadu_ps(k, up + i);
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(silu, u));
  }
}
constexpr int64_t kMaxGroup = 16;  // query heads per kv head
constexpr int64_t kMaxChunks = 16;  // head_dim up to 256

// One token's attention (see the top of this file) over one kv head's cache slices:
// `in` its fused projection, `q` its rotated queries, kh/vh that kv head's keys and
// values (row stride ks1/vs1; the token's own row, end - 1, already written), `out`
// the attended values of the head's query group. G and C, when not 0, fix the group
// size and hd / 16 at compile time, so that the keys, values and accumulators stay in
// registers (the same operations in the same order as with G = C = 0).
template <int G, int C>
void attend_kv_head_as(const float* q, const float* kh, int64_t ks1, const float* vh, int64_t vs1, int64_t end,
                       int64_t group_given, int64_t hd_given, float* out, std::vector<float>& p) {
  const int64_t group = G ? G : group_given, chunks = C ? C : hd_given / 16, hd = 16 * chunks;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  p.resize(group * end);
  // scores: each key row is read once for all the group's queries
  for (int64_t t = 0; t < end; ++t) {
    __m512 key[kMaxChunks];
    for (int64_t c = 0; c < chunks; ++c) key[c] = _mm512_loadu_ps(kh + t * ks1 + 16 * c);
    for (int64_t j = 0; j < group; ++j) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t c = 0; c < chunks; ++c) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + j * hd + 16 * c), key[c], acc);
      p[j * end + t] = _mm512_reduce_add_ps(acc) * scale;
    }
  }
  // softmax per query
  float inverse[kMaxGroup];
  for (int64_t j = 0; j < group; ++j) {
    float* pj = p.data() + j * end;
    __m512 top = _mm512_set1_ps(-INFINITY);
    for (int64_t t = 0; t < end; t += 16)
      top = _mm512_mask_max_ps(top, tail_mask(end - t), top, _mm512_maskz_loadu_ps(tail_mask(end - t), pj + t));
    const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(top));
    __m512 total = _mm512_setzero_ps();
    for (int64_t t = 0; t < end; t += 16) {
      const __mmask16 k = tail_mask(end - t);
      const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, pj + t), shift)));
      _mm512_mask_storeu_ps(pj + t, k, e);
      total = _mm512_add_ps(total, e);
    }
    inverse[j] = 1.f / _mm512_reduce_add_ps(total);
  }
  // weighted values: each value row is read once for all the group's queries
  __m512 acc[kMaxGroup][kMaxChunks];
  for (int64_t j = 0; j < group; ++j)
    for (int64_t c = 0; c < chunks; ++c) acc[j][c] = _mm512_setzero_ps();
  for (int64_t t = 0; t < end; ++t) {
    __m512 value[kMaxChunks];
    for (int64_t c = 0; c < chunks; ++c) value[c] = _mm512_loadu_ps(vh + t * vs1 + 16 * c);
    for (int64_t j = 0; j < group; ++j) {
      const __m512 w = _mm512_set1_ps(p[j * end + t]);
      for (int64_t c = 0; c < chunks; ++c) acc[j][c] = _mm512_fmadd_ps(w, value[c], acc[j][c]);
    }
  }
  for (int64_t j = 0; j < group; ++j)
    for (int64_t c = 0; c < chunks; ++c)
      _mm512_mask_storeu_ps(out + j * hd + 16 * c, tail_mask(hd - 16 * c), _mm512_mul_ps(acc[j][c], _mm512_set1_ps(inverse[j])));
}

// attend_kv_head_as is compiled for groups of up to 8 query heads and head_dim 64 and
// 128 (hd / 16 up to 8): decode_ops.h's attend_kv_head_for.
constexpr int kCompiledGroup = 8, kCompiledChunks = 8;

}  // namespace

#include "decode_ops.h"  // the ops around the functions above, and their registration
