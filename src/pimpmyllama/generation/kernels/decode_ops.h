// The ops of ../decode.cpp around an instruction set's arithmetic: argument checks,
// the loops over rows, the rotation of q and k, the cache writes, the choice of the
// attention kernel compiled for a model's heads and the split of the work among
// threads, and the ops' schemas and registration. Included at the end of each
// instruction set's decode.cpp, after its anonymous namespace defines
//   dot(a, b, n)                          the fp32 dot product of rms_norm;
//   scale_row(x, w, scale, d, out)        out = x * scale * w over d values;
//   silu_mul_row(gate, up, n, out)        out = silu(gate) * up over n values;
//   kMaxGroup, kMaxChunks                 query heads per kv head and hd / 16, at most;
//   attend_kv_head_as<G, C>               the attention over one kv head (G and C, when
//                                         not 0, the group size and hd / 16);
//   kCompiledGroup, kCompiledChunks       the largest G and C it is compiled for,
// and reopening that namespace (one per file) for the ops.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat, "rms_norm: fp32 only");
  const auto xc = x.contiguous(), wc = weight.contiguous();
  const int64_t d = xc.size(-1), rows = xc.numel() / d;
  TORCH_CHECK(wc.numel() == d, "rms_norm: weight does not match x");
  auto y = at::empty_like(xc);
  const float *xp = xc.data_ptr<float>(), *wp = wc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = xp + r * d;
    scale_row(row, wp, 1.f / std::sqrt(dot(row, row, d) / d + static_cast<float>(eps)), d, yp + r * d);
  }
  return y;
}

at::Tensor silu_mul(const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.scalar_type() == at::kFloat && gate_up.size(-1) % 2 == 0, "silu_mul: fp32 [.., 2n]");
  const auto gu = gate_up.contiguous();
  const int64_t n = gu.size(-1) / 2, rows = gu.numel() / (2 * n);
  auto sizes = gu.sizes().vec();
  sizes.back() = n;
  auto y = at::empty(sizes, gu.options());
  const float* gp = gu.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) silu_mul_row(gp + r * 2 * n, gp + r * 2 * n + n, n, yp + r * n);
  return y;
}

using AttendKvHead = void (*)(const float*, const float*, int64_t, const float*, int64_t, int64_t, int64_t, int64_t,
                              float*, std::vector<float>&);

// attend_kv_head_as<group, C> for a group of 1 to G query heads, else the general one.
template <int C, int G>
AttendKvHead attend_kv_head_for_group(int64_t group) {
  if constexpr (G == 0) {
    return &attend_kv_head_as<0, 0>;
  } else {
    return group == G ? &attend_kv_head_as<G, C> : attend_kv_head_for_group<C, G - 1>(group);
  }
}

// attend_kv_head_as for a model's heads: compiled for them where head_dim is 64 (or
// 128, where kCompiledChunks reaches 8) and a kv head has up to kCompiledGroup query
// heads (most Llama-family models), else the general one (the same arithmetic).
AttendKvHead attend_kv_head_for(int64_t group, int64_t hd) {
  if (hd == 64) return attend_kv_head_for_group<4, kCompiledGroup>(group);
  if constexpr (kCompiledChunks >= 8) {
    if (hd == 128) return attend_kv_head_for_group<8, kCompiledGroup>(group);
  }
  return &attend_kv_head_as<0, 0>;
}

void rotate(const float* in, const float* rotation, float* out, int64_t hd) {
  for (int64_t i = 0; i < hd / 2; ++i) {
    const float a = in[2 * i], b = in[2 * i + 1], c = rotation[2 * i], s = rotation[2 * i + 1];
    out[2 * i] = a * c - b * s;
    out[2 * i + 1] = a * s + b * c;
  }
}

// One token of one sequence, up to the attention proper: rotates its queries into
// `q` and writes its rotated key and its value at row end - 1 of each kv head.
void rotate_and_store(const float* in, const float* rot, float* kp, int64_t ks0, int64_t ks1, float* vp, int64_t vs0,
                      int64_t vs1, int64_t end, int64_t heads, int64_t kv_heads, int64_t hd, float* q) {
  for (int64_t h = 0; h < heads; ++h) rotate(in + h * hd, rot, q + h * hd, hd);
  std::vector<float> key(hd);
  for (int64_t g = 0; g < kv_heads; ++g) {
    rotate(in + (heads + g) * hd, rot, key.data(), hd);
    const float* value = in + (heads + kv_heads + g) * hd;
    for (int64_t i = 0; i < hd; ++i) {
      kp[g * ks0 + (end - 1) * ks1 + i] = key[i];
      vp[g * vs0 + (end - 1) * vs1 + i] = value[i];
    }
  }
}

void check_heads(int64_t heads, int64_t kv_heads, int64_t hd) {
  TORCH_CHECK(heads % kv_heads == 0 && hd % 16 == 0 && heads / kv_heads <= kMaxGroup && hd / 16 <= kMaxChunks,
              "attend: more query heads per kv head or a longer head_dim than this kernel holds");
}

at::Tensor attend_one(const at::Tensor& qkv, const at::Tensor& rotation, at::Tensor keys, at::Tensor values,
                      int64_t heads) {
  TORCH_CHECK(qkv.scalar_type() == at::kFloat && rotation.scalar_type() == at::kFloat &&
                  keys.scalar_type() == at::kFloat && values.scalar_type() == at::kFloat,
              "attend_one: fp32 qkv, rotation and cache");
  TORCH_CHECK(keys.dim() == 3 && keys.sizes() == values.sizes() && keys.stride(2) == 1 && values.stride(2) == 1,
              "attend_one: keys and values must be [kv heads, positions, head_dim] views with unit last stride");
  const int64_t kv_heads = keys.size(0), end = keys.size(1), hd = keys.size(2);
  TORCH_CHECK(heads % kv_heads == 0 && qkv.numel() == (heads + 2 * kv_heads) * hd && rotation.numel() == hd,
              "attend_one: shapes do not match");
  check_heads(heads, kv_heads, hd);
  const auto qc = qkv.contiguous(), rc = rotation.contiguous();
  float* kp = keys.data_ptr<float>();
  float* vp = values.data_ptr<float>();
  const int64_t ks0 = keys.stride(0), ks1 = keys.stride(1), vs0 = values.stride(0), vs1 = values.stride(1);
  std::vector<float> q(heads * hd);
  rotate_and_store(qc.data_ptr<float>(), rc.data_ptr<float>(), kp, ks0, ks1, vp, vs0, vs1, end, heads, kv_heads, hd,
                   q.data());
  auto out = at::empty({1, heads * hd}, qkv.options());
  float* op = out.data_ptr<float>();
  const int64_t group = heads / kv_heads;
  // a kv head and its queries are ~4 * group * end * hd flops: only long caches are worth a second thread
  const int64_t grain = group * end * hd >= (1 << 16) ? 1 : kv_heads;
  const AttendKvHead attend_kv_head = attend_kv_head_for(group, hd);
  at::parallel_for(0, kv_heads, grain, [&](int64_t begin, int64_t stop) {
    std::vector<float> p;
    for (int64_t g = begin; g < stop; ++g)
      attend_kv_head(q.data() + g * group * hd, kp + g * ks0, ks1, vp + g * vs0, vs1, end, group, hd,
                     op + g * group * hd, p);
  });
  return out;
}

// attend_one for one new token of each of B sequences, in one call: row b of qkv
// [B, (H + 2 KV) * hd] with rotations[b] [hd / 2, 2], over layer `layer` of caches
// keys[b] / values[b] ([layers, KV, max_len, hd], fp32, contiguous), its token at
// position ends[b] - 1. Each (sequence, kv head) is computed exactly as attend_one
// computes it, so a row's result does not depend on the others.
at::Tensor attend_rows(const at::Tensor& qkv, const at::Tensor& rotations, at::TensorList keys, at::TensorList values,
                       at::IntArrayRef ends, int64_t layer, int64_t heads) {
  const int64_t rows = qkv.size(0);
  TORCH_CHECK(qkv.dim() == 2 && qkv.scalar_type() == at::kFloat && rotations.scalar_type() == at::kFloat &&
                  rotations.size(0) == rows && static_cast<int64_t>(keys.size()) == rows &&
                  static_cast<int64_t>(values.size()) == rows && static_cast<int64_t>(ends.size()) == rows,
              "attend_rows: one qkv row, rotation, cache and end per sequence");
  TORCH_CHECK(rows > 0, "attend_rows: no rows");
  const int64_t kv_heads = keys[0].size(1), hd = keys[0].size(3), group = heads / kv_heads;
  check_heads(heads, kv_heads, hd);
  TORCH_CHECK(qkv.size(1) == (heads + 2 * kv_heads) * hd && rotations[0].numel() == hd, "attend_rows: shapes do not match");
  for (int64_t b = 0; b < rows; ++b)
    TORCH_CHECK(keys[b].scalar_type() == at::kFloat && values[b].scalar_type() == at::kFloat && keys[b].is_contiguous() &&
                    values[b].is_contiguous() && keys[b].size(1) == kv_heads && keys[b].size(3) == hd &&
                    keys[b].sizes() == values[b].sizes() && layer < keys[b].size(0) && ends[b] >= 1 &&
                    ends[b] <= keys[b].size(2),
                "attend_rows: cache ", b, " does not match");
  const auto qc = qkv.contiguous(), rc = rotations.contiguous();
  const float *in = qc.data_ptr<float>(), *rot = rc.data_ptr<float>();
  std::vector<float> q(rows * heads * hd);
  auto out = at::empty({rows, heads * hd}, qkv.options());
  float* op = out.data_ptr<float>();
  auto cache = [&](at::TensorList list, int64_t b) { return list[b].data_ptr<float>() + layer * list[b].stride(0); };
  for (int64_t b = 0; b < rows; ++b)
    rotate_and_store(in + b * qkv.size(1), rot + b * hd, cache(keys, b), keys[b].stride(1), keys[b].stride(2),
                     cache(values, b), values[b].stride(1), values[b].stride(2), ends[b], heads, kv_heads, hd,
                     q.data() + b * heads * hd);
  const AttendKvHead attend_kv_head = attend_kv_head_for(group, hd);
  at::parallel_for(0, rows * kv_heads, 1, [&](int64_t begin, int64_t stop) {
    std::vector<float> p;
    for (int64_t i = begin; i < stop; ++i) {
      const int64_t b = i / kv_heads, g = i % kv_heads;
      attend_kv_head(q.data() + (b * heads + g * group) * hd, cache(keys, b) + g * keys[b].stride(1), keys[b].stride(2),
                     cache(values, b) + g * values[b].stride(1), values[b].stride(2), ends[b], group, hd,
                     op + (b * heads + g * group) * hd, p);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pml, lib) {
  lib.def("rms_norm(Tensor x, Tensor weight, float eps) -> Tensor");
  lib.def("silu_mul(Tensor gate_up) -> Tensor");
  lib.def("attend_one(Tensor qkv, Tensor rotation, Tensor(a!) keys, Tensor(b!) values, int heads) -> Tensor");
  lib.def("attend_rows(Tensor qkv, Tensor rotations, Tensor(a!)[] keys, Tensor(b!)[] values, int[] ends, int layer, "
          "int heads) -> Tensor");
}

TORCH_LIBRARY_IMPL(pml, CPU, lib) {
  lib.impl("rms_norm", &rms_norm);
  lib.impl("silu_mul", &silu_mul);
  lib.impl("attend_one", &attend_one);
  lib.impl("attend_rows", &attend_rows);
}
