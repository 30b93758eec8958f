// Attention of one query position (a decoding step) over cached keys and values, without PyTorch's fused kernel.
//
// In a decoding step each attention call has one query row per sentence and head and a few dozen keys; PyTorch's
// fused kernel spends more time setting up its tiles than attending (about 12 us a call on two threads, measured
// with benchmarks.probes profile). Here each (sentence, head) is a pass over its keys: scores q . k_j / sqrt(d),
// softmax (max subtracted first), then the weighted sum of the values, with masked keys left out and a query with
// no key left giving zeros (as the fused kernel on the CPU does). tformer/nn/attention.py takes this function too
// (from tformer.nn.kernels), so the C++ step and the Python modules compute the same values.
#pragma once

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace decode_attention {

using torch::Tensor;

constexpr int64_t kParallelWork = 1 << 16;  // keys x head_dim x (sentences x heads) from which threads share it
constexpr int64_t kMostPairs = 32;  // (sentences x heads) the kernel takes: more go faster through PyTorch's

// Whether the kernel takes one query position for `pairs` (sentence, head) pairs: decoding a sentence or a few
// (greedy or beam). At 128 pairs and more (batch 32) PyTorch's fused kernel, with its vectorised exponential, was
// faster (benchmarks.run, translation case). tformer/nn/attention.py's one_query_kernel_applies has the same rule.
inline bool takes(int64_t pairs) { return pairs <= kMostPairs; }

// a . b over n floats: eight running sums (AVX2), added pairwise at the end; any CPU: one running sum.
inline float dot(const float* a, const float* b, int64_t n) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  const __m128 pair = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 two = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
  float sum = _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps(two, two, 1)));
#else
  float sum = 0.0f;
  int64_t i = 0;
#endif
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// q (batch, heads, 1, head_dim); k, v (batch, heads, keys, head_dim), each with its last dimension contiguous;
// mask: None or bool broadcastable to (batch, heads, 1, keys), True = may attend. Returns (batch, heads, 1,
// head_dim) float32.
inline Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& mask) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.size(2) == 1 && q.scalar_type() == at::kFloat &&
                  k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat,
              "decode_attention: q (batch, heads, 1, head_dim), k and v (batch, heads, keys, head_dim) float32 "
              "expected, got ", q.sizes(), " ", q.scalar_type(), ", ", k.sizes(), ", ", v.sizes());
  const int64_t batch = q.size(0), heads = q.size(1), dim = q.size(3), keys = k.size(2);
  TORCH_CHECK(k.sizes() == v.sizes() && k.size(0) == batch && k.size(1) == heads && k.size(3) == dim,
              "decode_attention: k ", k.sizes(), " and v ", v.sizes(), " do not match q ", q.sizes());
  const auto qc = q.stride(3) == 1 ? q : q.contiguous();
  const auto kc = k.stride(3) == 1 ? k : k.contiguous();
  const auto vc = v.stride(3) == 1 ? v : v.contiguous();
  Tensor allowed;  // (batch, heads, 1, keys) bool view, or undefined
  if (mask.has_value() && mask->defined()) {
    TORCH_CHECK(mask->scalar_type() == at::kBool, "decode_attention: the mask must be bool, got ",
                mask->scalar_type());
    allowed = mask->expand({batch, heads, 1, keys});
  }
  auto out = at::empty({batch, heads, 1, dim}, qc.options());
  const float* qp = qc.data_ptr<float>();
  const float* kp = kc.data_ptr<float>();
  const float* vp = vc.data_ptr<float>();
  const bool* mp = allowed.defined() ? allowed.data_ptr<bool>() : nullptr;
  float* op = out.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const int64_t pairs = batch * heads;
  const int64_t grain = keys * dim * pairs < kParallelWork ? pairs : 1;
  at::parallel_for(0, pairs, grain, [&](int64_t p0, int64_t p1) {
    std::vector<float> weights(keys);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / heads, h = p % heads;
      const float* query = qp + b * qc.stride(0) + h * qc.stride(1);
      const float* key = kp + b * kc.stride(0) + h * kc.stride(1);
      const float* value = vp + b * vc.stride(0) + h * vc.stride(1);
      const bool* may = mp == nullptr ? nullptr : mp + b * allowed.stride(0) + h * allowed.stride(1);
      float* result = op + p * dim;
      float largest = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < keys; ++j) {
        const bool in = may == nullptr || may[j * allowed.stride(3)];
        weights[j] = in ? dot(query, key + j * kc.stride(2), dim) * scale : -std::numeric_limits<float>::infinity();
        largest = std::max(largest, weights[j]);
      }
      std::fill(result, result + dim, 0.0f);
      if (largest == -std::numeric_limits<float>::infinity()) continue;  // no key to attend to: zeros
      float total = 0.0f;
      for (int64_t j = 0; j < keys; ++j) {
        weights[j] = std::exp(weights[j] - largest);  // exp(-inf) = 0 for masked keys
        total += weights[j];
      }
      for (int64_t j = 0; j < keys; ++j) {
        const float w = weights[j];
        if (w == 0.0f) continue;
        const float* row = value + j * vc.stride(2);
        for (int64_t d = 0; d < dim; ++d) result[d] += w * row[d];
      }
      const float inverse = 1.0f / total;
      for (int64_t d = 0; d < dim; ++d) result[d] *= inverse;
    }
  });
  return out;
}

}  // namespace decode_attention
