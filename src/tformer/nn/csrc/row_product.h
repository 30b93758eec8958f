// Products of a few rows by a weight, for decoding steps (one row per sentence or beam): x (rows, in) times W
// (out, in) transposed, plus a bias, with W packed once into blocks of 16 output features.
//
// At a handful of rows a product is a pass over the weight; oneDNN and MKL spend more time setting it up and
// handing it to threads than multiplying (measured: benchmarks.probes forms). Here the weight is stored as
// (blocks, in, 16): block b holds output features 16 b .. 16 b + 15, input by input, so one pass reads it in order
// while each row's 16 sums stay in registers. Every output's sum runs over the inputs in order, one fused
// multiply-add at a time, whatever the number of rows and whichever rows share a pass: a row's result does not
// depend on the other rows of the batch. Large weights are split over the threads by blocks.
//
// tformer/nn/linear.py (form "rows") and decoder_step.cpp both call this, so the Python modules and the C++ step
// compute the same values. The vectorised loop needs AVX2 and FMA at compile time (tformer/nn/native.py builds
// with them where the CPU has them); without them the plain loop below sums in the same order (without fused
// rounding).
#pragma once

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TFORMER_ROW_PRODUCT_AVX2 1
#endif

namespace row_product {

constexpr int64_t kBlock = 16;                 // output features per block
constexpr int64_t kParallelWeights = 1 << 17;  // weights (in x out) from which the blocks are split over threads

using torch::Tensor;

// W (out, in) float32 -> (ceil(out / 16), in, 16), the last block padded with zeros.
inline Tensor pack(const Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == at::kFloat, "row_product.pack: a float32 (out, in) "
              "weight is expected, got ", weight.scalar_type(), " of shape ", weight.sizes());
  const int64_t out = weight.size(0), in = weight.size(1), blocks = (out + kBlock - 1) / kBlock;
  auto padded = at::zeros({blocks * kBlock, in}, weight.options());
  padded.narrow(0, 0, out).copy_(weight);
  return padded.view({blocks, kBlock, in}).transpose(1, 2).contiguous();  // (blocks, in, 16)
}

namespace detail {

// The 16 (or `valid`) bias values of a block, zeros without a bias.
inline void block_bias(const float* bias, int64_t first, int64_t valid, float* into) {
  std::fill(into, into + kBlock, 0.0f);
  if (bias != nullptr) std::memcpy(into, bias + first, sizeof(float) * valid);
}

// Rows r0 .. r0 + R - 1 times blocks b0 .. b0 + B - 1, in plain C++ (any CPU).
template <int R, int B>
void blocks_plain(const float* x, int64_t in, const float* w, const float* bias, float* y, int64_t out, int64_t b0) {
  float acc[R][B][kBlock];
  for (int b = 0; b < B; ++b) {
    float start[kBlock];
    const int64_t first = (b0 + b) * kBlock;
    block_bias(bias, first, std::min(kBlock, out - first), start);
    for (int r = 0; r < R; ++r) std::memcpy(acc[r][b], start, sizeof(start));
  }
  for (int64_t i = 0; i < in; ++i)
    for (int b = 0; b < B; ++b) {
      const float* wi = w + ((b0 + b) * in + i) * kBlock;
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < kBlock; ++j) acc[r][b][j] += x[r * in + i] * wi[j];
    }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) {
      const int64_t first = (b0 + b) * kBlock;
      std::memcpy(y + r * out + first, acc[r][b], sizeof(float) * std::min(kBlock, out - first));
    }
}

#ifdef TFORMER_ROW_PRODUCT_AVX2
// The same with AVX2 and FMA: each row's 16 sums of a block in two 8-float registers. R x B is chosen so that
// 2 R B accumulators give the fused multiply-adds enough independent chains without running out of registers.
template <int R, int B>
void blocks_avx2(const float* x, int64_t in, const float* w, const float* bias, float* y, int64_t out, int64_t b0) {
  __m256 lo[R][B], hi[R][B];
  for (int b = 0; b < B; ++b) {
    alignas(32) float start[kBlock];
    const int64_t first = (b0 + b) * kBlock;
    block_bias(bias, first, std::min(kBlock, out - first), start);
    for (int r = 0; r < R; ++r) {
      lo[r][b] = _mm256_load_ps(start);
      hi[r][b] = _mm256_load_ps(start + 8);
    }
  }
  for (int64_t i = 0; i < in; ++i) {
    __m256 xi[R];
    for (int r = 0; r < R; ++r) xi[r] = _mm256_broadcast_ss(x + r * in + i);
    for (int b = 0; b < B; ++b) {
      const float* wi = w + ((b0 + b) * in + i) * kBlock;
      const __m256 w_lo = _mm256_loadu_ps(wi), w_hi = _mm256_loadu_ps(wi + 8);
      for (int r = 0; r < R; ++r) {
        lo[r][b] = _mm256_fmadd_ps(xi[r], w_lo, lo[r][b]);
        hi[r][b] = _mm256_fmadd_ps(xi[r], w_hi, hi[r][b]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) {
      const int64_t first = (b0 + b) * kBlock, valid = std::min(kBlock, out - first);
      float* yr = y + r * out + first;
      if (valid == kBlock) {
        _mm256_storeu_ps(yr, lo[r][b]);
        _mm256_storeu_ps(yr + 8, hi[r][b]);
      } else {
        alignas(32) float sums[kBlock];
        _mm256_store_ps(sums, lo[r][b]);
        _mm256_store_ps(sums + 8, hi[r][b]);
        std::memcpy(yr, sums, sizeof(float) * valid);
      }
    }
}
#endif

// Groups of R rows (4, or the 1-3 left) times the blocks b0 .. b1 - 1, B blocks at a time (B so that a group keeps
// about eight accumulators).
template <int R>
void rows_times_blocks(const float* x, int64_t in, const float* w, const float* bias, float* y, int64_t out,
                       int64_t b0, int64_t b1) {
  constexpr int B = R == 1 ? 4 : R == 2 ? 2 : 1;
  int64_t b = b0;
  auto run = [&](auto blocks) {
    constexpr int kB = decltype(blocks)::value;
#ifdef TFORMER_ROW_PRODUCT_AVX2
    blocks_avx2<R, kB>(x, in, w, bias, y, out, b);
#else
    blocks_plain<R, kB>(x, in, w, bias, y, out, b);
#endif
  };
  for (; b + B <= b1; b += B) run(std::integral_constant<int, B>());
  for (; b < b1; ++b) run(std::integral_constant<int, 1>());
}

inline void all_rows(const float* x, int64_t rows, int64_t in, const float* w, const float* bias, float* y, int64_t out,
              int64_t b0, int64_t b1) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) rows_times_blocks<4>(x + r * in, in, w, bias, y + r * out, out, b0, b1);
  switch (rows - r) {
    case 3: rows_times_blocks<3>(x + r * in, in, w, bias, y + r * out, out, b0, b1); break;
    case 2: rows_times_blocks<2>(x + r * in, in, w, bias, y + r * out, out, b0, b1); break;
    case 1: rows_times_blocks<1>(x + r * in, in, w, bias, y + r * out, out, b0, b1); break;
    default: break;
  }
}

}  // namespace detail

// x (rows, in) float32 times the packed weight (from `pack`) of a layer with `out` output features, plus `bias`
// (out,) or an undefined tensor: (rows, out).
inline Tensor multiply(const Tensor& x, const Tensor& packed, const Tensor& bias, int64_t out) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && packed.dim() == 3 && packed.size(2) == kBlock &&
                  packed.size(1) == x.size(1) && packed.size(0) * kBlock >= out && out > (packed.size(0) - 1) * kBlock,
              "row_product.multiply: x ", x.sizes(), " ", x.scalar_type(), " does not fit the packed weight ",
              packed.sizes(), " of ", out, " outputs");
  TORCH_CHECK(!bias.defined() || (bias.numel() == out && bias.scalar_type() == at::kFloat),
              "row_product.multiply: the bias should be float32 with ", out, " values");
  const auto xc = x.contiguous();
  const auto bc = bias.defined() ? bias.contiguous() : bias;
  const int64_t rows = xc.size(0), in = xc.size(1), blocks = packed.size(0);
  auto y = at::empty({rows, out}, xc.options());
  const float* xp = xc.data_ptr<float>();
  const float* wp = packed.data_ptr<float>();
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Blocks per thread: all of them in one thread below kParallelWeights, else at least that many weights each.
  const int64_t grain = std::max<int64_t>(1, kParallelWeights / (in * kBlock));
  const int64_t chunk = in * out < kParallelWeights ? blocks : grain;
  at::parallel_for(0, blocks, chunk, [&](int64_t b0, int64_t b1) {
    detail::all_rows(xp, rows, in, wp, bp, yp, out, b0, b1);
  });
  return y;
}

}  // namespace row_product
