// One incremental decoding step through a stack of Transformer decoder layers, in C++; and, built on it, greedy and
// beam search of one sentence with the whole loop here (embedding, positions, the step, output projection,
// log-softmax and the choice of tokens).
//
// The same computation as tformer.nn.stacks.Decoder with a KV cache and one new target position per sentence.
// This file mirrors tformer/nn/native.py, which builds it on first use (falling back to Python without a
// compiler), decides when it applies, and gathers each layer's tensors in the order of its LAYER_TENSORS, the
// order `LayerTensor` below names; a change to one side goes to the other. It calls the same kernels in the same
// order as the Python modules (tformer/nn/layers.py, attention.py, feedforward.py, and linear.py's choice of
// product form, whose "rows" form is this extension's row kernel, row_product.h), so results are identical; what
// it removes is the Python interpreter's time between the hundreds of operator calls of a step, which at batch 1
// is about as long as the arithmetic itself. The search loops mirror tformer/decoding/greedy.py and beam.py in the
// same way (tformer/decoding/native_search.py calls them; both choose beams with top_of_sums below), so they pick
// the same tokens with the same log-probabilities.
#include <torch/extension.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include "decode_attention.h"
#include "row_product.h"
#include <torch/csrc/jit/api/object.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

using torch::Tensor;

namespace {

// Offsets of one layer's tensors in `tensors` (and `packed`): native.py's LAYER_TENSORS, in the same order. Per
// sub-layer (masked self-attention, encoder-decoder attention, feed-forward): its two products' weight and bias,
// then its Add & Norm's LayerNorm weight and bias.
enum LayerTensor : int64_t {
  kSelfQkvWeight, kSelfQkvBias,      // self-attention's fused Q/K/V projection (3 d_model, d_model)
  kSelfOutWeight, kSelfOutBias,      // its output projection (d_model, d_model)
  kSelfNormWeight, kSelfNormBias,    // Add & Norm
  kCrossQueryWeight, kCrossQueryBias,  // encoder-decoder attention: the query rows of its Q/K/V projection
  kCrossOutWeight, kCrossOutBias,
  kCrossNormWeight, kCrossNormBias,
  kFfnInWeight, kFfnInBias,          // feed-forward: d_model -> d_ff (the activation follows)
  kFfnOutWeight, kFfnOutBias,        // d_ff -> d_model
  kFfnNormWeight, kFfnNormBias,
  kTensorsPerLayer
};

Tensor activate(const Tensor& h, int64_t activation) {
  if (activation < 0) return h;
  if (activation == 0) return h.relu_();
  return at::gelu(h, activation == 1 ? "none" : "tanh");
}

// (W · xᵀ)ᵀ for one row x (1, in): w's rows cut into blocks (views) and one batched product over them.
Tensor one_row(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t out = w.size(0);
  int64_t blocks = std::max<int64_t>(at::get_num_threads(), 2);
  if (out % blocks != 0 || !w.is_contiguous()) blocks = 1;
  auto w_blocks = blocks > 1 ? w.view({blocks, out / blocks, w.size(1)}) : w.unsqueeze(0);  // (blocks, out/blocks, in)
  auto x_t = x.t().expand({blocks, x.size(1), 1});                                          // (blocks, in, 1)
  return at::baddbmm(b.view({blocks, out / blocks, 1}), w_blocks, x_t).view({1, out});
}

// The int8 copy's products (tformer.nn.quantized.Int8Linear): fbgemm's packed int8 weights and bias, one per
// product, at the weights' offsets of `tensors` (None elsewhere). Built once per decoding run from the Python
// objects (native.py's _State), so a step passes them without converting each one again.
struct Int8Products {
  std::vector<c10::IValue> params;
  Int8Products() = default;
  explicit Int8Products(const std::vector<py::object>& objects) {
    for (const auto& object : objects)
      params.push_back(object.is_none() ? c10::IValue() : c10::IValue(py::cast<torch::jit::Object>(object)._ivalue()));
  }
};

// x times fbgemm's packed int8 weight plus bias, x quantized on the fly (as Int8Linear.forward), then the
// activation.
Tensor int8_product(const Tensor& x, const c10::IValue& params, int64_t activation) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
  torch::jit::Stack stack{x, params, true};  // reduce_range=True, as Int8Linear passes
  op.callBoxed(&stack);
  return activate(stack[0].toTensor(), activation);
}

// Which products the row kernel (row_product.h) takes: 2 to 4 rows by a weight of fewer than 2^18 values (1 MB),
// which stays in a core's cache from one decoding step to the next. Measured (benchmarks.probes forms): there it
// beats oneDNN; weights read from memory stream faster through oneDNN, and one row goes by row blocks. The rule of
// tformer.nn.linear.row_kernel_takes.
bool row_kernel_takes(int64_t rows, int64_t in, int64_t out) { return rows >= 2 && rows <= 4 && in * out < (1 << 18); }

// act(x (rows, in) times w (out, in), plus b): (rows, out); activation -1 none, 0 relu, 1 gelu, 2 gelu (tanh).
// The form tformer.nn.linear.fast_linear picks, so that the results are the same: the plain product for a dtype
// other than float32 (bfloat16 weights); where row_kernel_takes, the row kernel with the weight packed once
// (`row_packed`); one row of a layer less than `wide_output` times wider out than in, by row blocks (then the
// activation); otherwise oneDNN with the weight reordered once (`packed`) and the activation fused; without a
// packed copy, row blocks for one row, else the plain product.
Tensor product(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& packed, const Tensor& row_packed,
               int64_t wide_output, int64_t activation = -1) {
  if (x.scalar_type() != at::kFloat) return activate(at::linear(x, w, b), activation);
  const int64_t rows = x.size(0), out = w.size(0);
  const bool narrow = out < wide_output * w.size(1);
  if (row_packed.defined() && row_kernel_takes(rows, w.size(1), out))
    return activate(row_product::multiply(x, row_packed, b, out), activation);
  if (rows == 1 && narrow) return activate(one_row(x, w, b), activation);
  if (packed.defined()) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
    static const char* const attrs[] = {"none", "relu", "gelu", "gelu"};
    static const char* const algorithms[] = {"", "", "none", "tanh"};
    torch::jit::Stack stack{x, packed, b, std::string(attrs[activation + 1]),
                            c10::List<std::optional<at::Scalar>>(), std::string(algorithms[activation + 1])};
    op.callBoxed(&stack);
    return stack[0].toTensor();
  }
  return activate(rows == 1 ? one_row(x, w, b) : at::linear(x, w, b), activation);
}

// The row kernel as the Python side calls it (tformer.nn.linear's "rows" form): x (rows, in) times the packed
// weight of a layer with `out` outputs, plus the bias (or None).
Tensor row_product_multiply(const Tensor& x, const Tensor& row_packed, const std::optional<Tensor>& bias,
                            int64_t out) {
  return row_product::multiply(x, row_packed, bias.value_or(Tensor()), out);
}

// Attention as tformer/nn/attention.py computes it without weights: one float32 query position of a few sentences
// by the decode_attention kernel, anything else by PyTorch's fused kernel. q (batch, heads, queries, head_dim).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::optional<Tensor>& mask = std::nullopt) {
  if (q.size(2) == 1 && q.scalar_type() == at::kFloat && decode_attention::takes(q.size(0) * q.size(1)))
    return decode_attention::attend(q, k, v, mask);
  return at::scaled_dot_product_attention(q, k, v, mask);
}

// x + sublayer(x) then LayerNorm (post-norm), or x + sublayer(LayerNorm(x)) (pre-norm).
template <typename Sublayer>
Tensor add_norm(const Tensor& x, const Tensor& norm_w, const Tensor& norm_b, double eps, bool norm_first,
                Sublayer sublayer) {
  const int64_t d = x.size(1);
  if (norm_first) return x + sublayer(at::layer_norm(x, {d}, norm_w, norm_b, eps));
  return at::layer_norm(x + sublayer(x), {d}, norm_w, norm_b, eps);
}

// The products of layer `l` of a stack whose layers have `per_layer` tensors each (decoder_step's or
// encoder_layers' layout): (*this)(x, i, act) multiplies by the weight at offset i, by int8 or float weights, as
// the layer computes it.
struct LayerProducts {
  const Tensor* t;
  const Tensor* p;  // oneDNN copies at the same offsets, or nullptr
  const Tensor* rp;  // the row kernel's copies at the same offsets, or nullptr
  const Int8Products* int8;
  int64_t first, wide;  // offset of the layer's first tensor; tformer.nn.linear.WIDE_OUTPUT
  const Tensor none;
  LayerProducts(const std::vector<Tensor>& tensors, const std::vector<Tensor>& packed,
                const std::vector<Tensor>& row_packed, const Int8Products* int8_, int64_t per_layer, int64_t l,
                int64_t wide_)
      : t(&tensors[l * per_layer]), p(packed.empty() ? nullptr : &packed[l * per_layer]),
        rp(row_packed.empty() ? nullptr : &row_packed[l * per_layer]), int8(int8_), first(l * per_layer),
        wide(wide_) {}
  const Tensor& operator[](int64_t i) const { return t[i]; }
  Tensor operator()(const Tensor& x, int64_t i, int64_t activation = -1) const {
    if (int8 != nullptr && !int8->params[first + i].isNone()) return int8_product(x, int8->params[first + i], activation);
    return product(x, t[i], t[i + 1], p == nullptr ? none : p[i], rp == nullptr ? none : rp[i], wide, activation);
  }
};

}  // namespace

// Offsets of one ENCODER layer's tensors: native.py's ENCODER_LAYER_TENSORS, in the same order (self-attention,
// then feed-forward, each: two products' weight and bias, then its Add & Norm).
enum EncoderTensor : int64_t {
  kEncSelfQkvWeight, kEncSelfQkvBias,    // self-attention's fused Q/K/V projection (3 d_model, d_model)
  kEncSelfOutWeight, kEncSelfOutBias,    // its output projection
  kEncSelfNormWeight, kEncSelfNormBias,
  kEncFfnInWeight, kEncFfnInBias,
  kEncFfnOutWeight, kEncFfnOutBias,
  kEncFfnNormWeight, kEncFfnNormBias,
  kEncoderTensorsPerLayer
};

// x: (batch, src_len, d_model), the embedded source with nothing padded. Every encoder layer, as
// tformer.nn.layers.EncoderLayer computes it without a padding mask (products on the (batch * src_len, d_model)
// rows, as tformer.nn.linear runs them; PyTorch's fused attention). Returns (batch, src_len, d_model), before any
// final LayerNorm. tensors/packed/row_packed/int8 as decoder_step's, in EncoderTensor's layout.
Tensor encoder_layers(Tensor x, const std::vector<Tensor>& tensors, const std::vector<Tensor>& packed,
                      const std::vector<Tensor>& row_packed, int64_t heads, double eps, bool norm_first,
                      int64_t activation, int64_t wide, const Int8Products* int8) {
  const int64_t batch = x.size(0), length = x.size(1), d = x.size(2), head_dim = d / heads;
  const int64_t layers = static_cast<int64_t>(tensors.size()) / kEncoderTensorsPerLayer;
  TORCH_CHECK(static_cast<int64_t>(tensors.size()) == layers * kEncoderTensorsPerLayer,
              "encoder_layers: the tensors are not a whole number of layers");
  auto h = x.reshape({batch * length, d});
  for (int64_t l = 0; l < layers; ++l) {
    const LayerProducts prod(tensors, packed, row_packed, int8, kEncoderTensorsPerLayer, l, wide);
    const auto& t = prod;
    h = add_norm(h, t[kEncSelfNormWeight], t[kEncSelfNormBias], eps, norm_first, [&](const Tensor& in) {
      auto qkv = prod(in, kEncSelfQkvWeight).view({batch, length, 3 * heads, head_dim}).transpose(1, 2);
      auto attended = attention(qkv.narrow(1, 0, heads), qkv.narrow(1, heads, heads), qkv.narrow(1, 2 * heads, heads));
      return prod(attended.transpose(1, 2).reshape({batch * length, d}), kEncSelfOutWeight);
    });
    h = add_norm(h, t[kEncFfnNormWeight], t[kEncFfnNormBias], eps, norm_first, [&](const Tensor& in) {
      return prod(prod(in, kEncFfnInWeight, activation), kEncFfnOutWeight);
    });
  }
  return h.view({batch, length, d});
}

// x: (batch, d_model), the new position's embedding. tensors: kTensorsPerLayer per layer, at the offsets of
// LayerTensor; packed: the same layout with oneDNN copies of the weights (undefined tensors elsewhere), or empty;
// row_packed: the same with the row kernel's copies (row_product::pack), or empty.
// self_keys/self_values: (batch, heads, capacity, head_dim) buffers holding `length` positions; the new one is
// written at `length`. cross_keys/cross_values: (batch, heads, src_len, head_dim). memory_mask: (batch, 1, 1,
// src_len) bool or None. activation: 0 relu, 1 gelu (erf), 2 gelu (tanh), as native.py's ACTIVATION_CODES; wide:
// tformer.nn.linear.WIDE_OUTPUT. int8: the int8 copy's products (the weight and bias tensors at their offsets are
// then unused), or None.
// Returns (batch, d_model), before any final LayerNorm.
Tensor decoder_step(Tensor x, const std::vector<Tensor>& tensors, const std::vector<Tensor>& packed,
                    const std::vector<Tensor>& row_packed, const std::vector<Tensor>& self_keys,
                    const std::vector<Tensor>& self_values, int64_t length,
                    const std::vector<Tensor>& cross_keys, const std::vector<Tensor>& cross_values,
                    const std::optional<Tensor>& memory_mask, int64_t heads, double eps, bool norm_first,
                    int64_t activation, int64_t wide, const Int8Products* int8) {
  const int64_t batch = x.size(0), d = x.size(1), head_dim = d / heads;
  const int64_t layers = static_cast<int64_t>(self_keys.size());
  TORCH_CHECK(static_cast<int64_t>(tensors.size()) == layers * kTensorsPerLayer, "decoder_step: expected ",
              layers * kTensorsPerLayer, " tensors, got ", tensors.size());
  for (int64_t l = 0; l < layers; ++l) {
    const LayerProducts prod(tensors, packed, row_packed, int8, kTensorsPerLayer, l, wide);  // prod(h, i): offset i
    const auto& t = prod;  // t[i]: the tensor at offset i (norm weights and biases)

    // Masked self-attention: the new position's key and value go into the cache, then all cached ones are attended.
    x = add_norm(x, t[kSelfNormWeight], t[kSelfNormBias], eps, norm_first, [&](const Tensor& h) {
      auto qkv = prod(h, kSelfQkvWeight).view({batch, 3 * heads, 1, head_dim});
      self_keys[l].select(2, length).copy_(qkv.narrow(1, heads, heads).squeeze(2));
      self_values[l].select(2, length).copy_(qkv.narrow(1, 2 * heads, heads).squeeze(2));
      auto keys = self_keys[l].narrow(2, 0, length + 1), values = self_values[l].narrow(2, 0, length + 1);
      auto attended = attention(qkv.narrow(1, 0, heads), keys, values);
      return prod(attended.reshape({batch, d}), kSelfOutWeight);
    });
    // Encoder-decoder attention over the cached keys and values of the encoder's output.
    x = add_norm(x, t[kCrossNormWeight], t[kCrossNormBias], eps, norm_first, [&](const Tensor& h) {
      auto q = prod(h, kCrossQueryWeight).view({batch, heads, 1, head_dim});
      auto attended = attention(q, cross_keys[l], cross_values[l], memory_mask);
      return prod(attended.reshape({batch, d}), kCrossOutWeight);
    });
    // Position-wise feed-forward.
    x = add_norm(x, t[kFfnNormWeight], t[kFfnNormBias], eps, norm_first, [&](const Tensor& h) {
      return prod(prod(h, kFfnInWeight, activation), kFfnOutWeight);
    });
  }
  return x;
}


namespace {

// What a search needs besides the decoder layers: the target embedding (times `scale`), the positions table (in
// the layers' dtype), the stack's final LayerNorm (pre-norm models; undefined tensors otherwise) and the output
// projection (float weights with their oneDNN and row-kernel copies, or the int8 copy's packed product). Gathered
// once per model (tformer/decoding/native_search.py keeps it while the weights are unchanged).
struct SearchModel {
  std::vector<Tensor> tensors, packed, row_packed;  // the decoder layers' tensors, as decoder_step takes them
  Int8Products int8;
  bool has_int8 = false;
  int64_t heads = 1, activation = 0, wide = 8;
  double eps = 1e-5, scale = 1.0, final_eps = 1e-5;
  bool norm_first = false;
  Tensor embed, table, final_weight, final_bias, out_weight, out_bias, out_packed, out_row_packed;
  c10::IValue out_int8;

  SearchModel(std::vector<Tensor> tensors_, std::vector<Tensor> packed_, std::vector<Tensor> row_packed_,
              const Int8Products* int8_, int64_t heads_, double eps_, bool norm_first_, int64_t activation_,
              int64_t wide_, Tensor embed_, double scale_, Tensor table_, std::optional<Tensor> final_weight_,
              std::optional<Tensor> final_bias_, double final_eps_, Tensor out_weight_, Tensor out_bias_,
              std::optional<Tensor> out_packed_, std::optional<Tensor> out_row_packed_, const py::object& out_int8_)
      : tensors(std::move(tensors_)), packed(std::move(packed_)), row_packed(std::move(row_packed_)),
        has_int8(int8_ != nullptr), heads(heads_),
        activation(activation_), wide(wide_), eps(eps_), scale(scale_), final_eps(final_eps_),
        norm_first(norm_first_), embed(std::move(embed_)), table(std::move(table_)),
        final_weight(final_weight_.value_or(Tensor())), final_bias(final_bias_.value_or(Tensor())),
        out_weight(std::move(out_weight_)), out_bias(std::move(out_bias_)), out_packed(out_packed_.value_or(Tensor())),
        out_row_packed(out_row_packed_.value_or(Tensor())) {
    if (int8_ != nullptr) int8 = *int8_;
    if (!out_int8_.is_none()) out_int8 = py::cast<torch::jit::Object>(out_int8_)._ivalue();
  }
  int64_t layers() const { return static_cast<int64_t>(tensors.size()) / kTensorsPerLayer; }
  int64_t d_model() const { return embed.size(1); }
};

// The growing self-attention keys and values of one search: (rows, heads, capacity, head_dim) per layer, and a
// spare buffer per tensor that reordering copies into and swaps with (as tformer.nn.cache does), so a beam step
// allocates nothing.
struct SelfCache {
  std::vector<Tensor> keys, values, spare_keys, spare_values;
  SelfCache(const SearchModel& m, int64_t rows, int64_t capacity, const Tensor& like) {
    const int64_t head_dim = m.d_model() / m.heads;
    for (int64_t l = 0; l < m.layers(); ++l) {
      keys.push_back(at::empty({rows, m.heads, capacity, head_dim}, like.options()));
      values.push_back(at::empty({rows, m.heads, capacity, head_dim}, like.options()));
    }
    spare_keys.resize(keys.size());
    spare_values.resize(values.size());
  }
  // Row i becomes old row index[i] (beam search), for the `length` positions written so far.
  void reorder(const Tensor& index, int64_t length) {
    move_rows(keys, spare_keys, index, length);
    move_rows(values, spare_values, index, length);
  }

 private:
  static void move_rows(std::vector<Tensor>& buffers, std::vector<Tensor>& spares, const Tensor& index,
                        int64_t length) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (!spares[i].defined()) spares[i] = at::empty_like(buffers[i]);
      auto filled = spares[i].narrow(2, 0, length);
      at::index_select_out(filled, buffers[i].narrow(2, 0, length), 0, index);
      std::swap(buffers[i], spares[i]);
    }
  }
};

// Log-probabilities (rows, vocab) in float32 of the token after `token` (rows,) at `position`, as
// Seq2SeqTransformer.next_token_log_probs computes them: embedding times scale plus the position's row (dropout is
// off in eval mode), the decoder step, the final norm, the output projection, log-softmax.
Tensor next_log_probs(const SearchModel& m, const Tensor& token, int64_t position, SelfCache& cache,
                      const std::vector<Tensor>& cross_keys, const std::vector<Tensor>& cross_values,
                      const std::optional<Tensor>& memory_mask) {
  auto x = at::embedding(m.embed, token) * m.scale + m.table.narrow(0, position, 1);  // (rows, d_model)
  auto h = decoder_step(x, m.tensors, m.packed, m.row_packed, cache.keys, cache.values, position, cross_keys,
                        cross_values, memory_mask, m.heads, m.eps, m.norm_first, m.activation, m.wide,
                        m.has_int8 ? &m.int8 : nullptr);
  if (m.final_weight.defined()) h = at::layer_norm(h, {m.d_model()}, m.final_weight, m.final_bias, m.final_eps);
  auto logits = m.out_int8.isNone() ? product(h, m.out_weight, m.out_bias, m.out_packed, m.out_row_packed, m.wide)
                                    : int8_product(h, m.out_int8, -1);
  return at::log_softmax(logits.to(at::kFloat), -1);
}

// In place on (rows, vocab), as tformer.decoding.search.restrict_to_eos: finished rows may only repeat EOS at
// log-probability 0; rows at their length limit may only end, with EOS at its own log-probability.
void restrict_to_eos(Tensor& lp, const Tensor& finished, const Tensor& at_limit, int64_t eos) {
  auto eos_lp = lp.select(1, eos).clone();
  lp.masked_fill_((finished | at_limit).unsqueeze(1), -std::numeric_limits<float>::infinity());
  auto column = lp.select(1, eos);
  column.copy_(at::where(at_limit, eos_lp, column));
  column.masked_fill_(finished, 0.0);
}

}  // namespace

// Beam search's choice, for each of the n sentences: the k largest of scores[s, i] + lp[s k + i, v] over its k
// hypotheses i and the vocabulary v, largest first, with their flat indices i * vocab + v. The same sums, values
// and order as (scores.reshape(-1, 1) + lp).view(n, k * vocab).topk(k) (equal sums: the lower index first; NaN
// sums are never chosen), in one pass over lp without the (n, k * vocab) sums or a sort. scores: (n, k) float32;
// lp: (n * k, vocab) float32. Returns values (n, k) and indices (n, k) int64.
std::tuple<Tensor, Tensor> top_of_sums(const Tensor& scores, const Tensor& lp) {
  TORCH_CHECK(scores.dim() == 2 && lp.dim() == 2 && scores.scalar_type() == at::kFloat &&
                  lp.scalar_type() == at::kFloat && lp.size(0) == scores.numel(),
              "top_of_sums: scores (n, k) and lp (n * k, vocab) float32 expected, got ", scores.sizes(), " ",
              scores.scalar_type(), " and ", lp.sizes(), " ", lp.scalar_type());
  const int64_t n = scores.size(0), k = scores.size(1), vocab = lp.size(1);
  TORCH_CHECK(vocab > 0, "top_of_sums: an empty vocabulary");
  const auto s = scores.contiguous(), l = lp.contiguous();
  auto values = at::empty({n, k}, s.options());
  auto indices = at::empty({n, k}, s.options().dtype(at::kLong));
  const float* sp = s.data_ptr<float>();
  const float* lpp = l.data_ptr<float>();
  float* vp = values.data_ptr<float>();
  int64_t* ip = indices.data_ptr<int64_t>();
  at::parallel_for(0, n, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t sentence = s0; sentence < s1; ++sentence) {
      float* best = vp + sentence * k;  // sorted, largest first; the first `kept` are set
      int64_t* where = ip + sentence * k;
      int64_t kept = 0;
      auto consider = [&](float sum, int64_t index) {
        if (kept == k ? !(sum > best[k - 1]) : std::isnan(sum)) return;  // mostly: not among the best so far
        int64_t at = kept < k ? kept++ : k - 1;  // the slot it takes, then moved up past smaller sums
        while (at > 0 && sum > best[at - 1]) {
          best[at] = best[at - 1];
          where[at] = where[at - 1];
          --at;
        }
        best[at] = sum;
        where[at] = index;
      };
      for (int64_t i = 0; i < k; ++i) {
        const float score = sp[sentence * k + i];
        const float* row = lpp + (sentence * k + i) * vocab;
        int64_t v = 0;
        for (; v < vocab && kept < k; ++v) consider(score + row[v], i * vocab + v);
#ifdef TFORMER_ROW_PRODUCT_AVX2
        // 16 sums at a time; only a group with a sum above the k-th best so far is looked at one by one.
        const __m256 score8 = _mm256_set1_ps(score);
        for (; v + 16 <= vocab; v += 16) {
          const __m256 threshold = _mm256_set1_ps(best[k - 1]);
          const __m256 a = _mm256_add_ps(score8, _mm256_loadu_ps(row + v));
          const __m256 b = _mm256_add_ps(score8, _mm256_loadu_ps(row + v + 8));
          const __m256 above = _mm256_or_ps(_mm256_cmp_ps(a, threshold, _CMP_GT_OQ),
                                            _mm256_cmp_ps(b, threshold, _CMP_GT_OQ));
          if (_mm256_movemask_ps(above) == 0) continue;
          for (int64_t j = v; j < v + 16; ++j) consider(score + row[j], i * vocab + j);
        }
#endif
        for (; v < vocab; ++v) consider(score + row[v], i * vocab + v);
      }
    }
  });
  return {values, indices};
}

// Greedy search of `limits.size(0)` rows (tformer/decoding/greedy.py without dropping finished rows, which
// changes no row's result): every row decodes until all have emitted EOS or reached their length limit
// (`limits`, (rows,) int64; `steps` = max limit + 1). cross_keys/cross_values: per layer (rows, heads, src_len,
// head_dim); memory_mask: (rows, 1, 1, src_len) bool or None. Returns tokens (rows, steps), EOS after each row's
// end, and their log-probabilities (rows, steps).
std::tuple<Tensor, Tensor> greedy_search(const SearchModel& m, const std::vector<Tensor>& cross_keys,
                                         const std::vector<Tensor>& cross_values,
                                         const std::optional<Tensor>& memory_mask, const Tensor& limits, int64_t bos,
                                         int64_t eos, int64_t steps, int64_t capacity) {
  const int64_t rows = limits.size(0);
  SelfCache cache(m, rows, capacity, cross_keys.at(0));
  auto tokens = at::full({rows, steps}, eos, limits.options());
  auto log_probs = at::zeros({rows, steps}, limits.options().dtype(at::kFloat));
  auto token = at::full({rows}, bos, limits.options());
  auto done = at::zeros({rows}, limits.options().dtype(at::kBool));
  const auto no_row = at::zeros_like(done);
  const int64_t first_limit = limits.min().item<int64_t>();
  for (int64_t step = 0; step < steps; ++step) {
    auto lp = next_log_probs(m, token, step, cache, cross_keys, cross_values, memory_mask);  // (rows, vocab)
    if (step >= first_limit) restrict_to_eos(lp, no_row, limits.le(step), eos);
    auto [best_lp, best] = lp.max(-1);  // (rows,)
    tokens.select(1, step).copy_(best);
    log_probs.select(1, step).copy_(best_lp);
    done |= best.eq(eos);
    if (done.all().item<bool>()) break;
    token = best;
  }
  return {tokens, log_probs};
}

// Beam search of ONE sentence with `k` hypotheses in rows 0..k-1 (tformer/decoding/beam.py at batch 1: the same
// tensors, the same operations). cross_keys/cross_values: per layer (k, heads, src_len, head_dim), the sentence's
// row repeated; limits: (k,). Returns tokens (k, steps + 1) starting with BOS, step log-probabilities (k, steps),
// lengths (k,) counting EOS, and scores (k,), for beam.py's _collect.
std::tuple<Tensor, Tensor, Tensor, Tensor> beam_search(const SearchModel& m, const std::vector<Tensor>& cross_keys,
                                                       const std::vector<Tensor>& cross_values,
                                                       const std::optional<Tensor>& memory_mask,
                                                       const Tensor& limits, int64_t bos, int64_t eos, int64_t pad,
                                                       int64_t steps, int64_t capacity) {
  const int64_t k = limits.size(0);
  const auto long_options = limits.options();
  SelfCache cache(m, k, capacity, cross_keys.at(0));
  auto tokens = at::full({k, steps + 1}, pad, long_options);
  tokens.select(1, 0).fill_(bos);
  auto step_lp = at::zeros({k, steps}, long_options.dtype(at::kFloat));
  auto lengths = at::zeros({k}, long_options);
  auto finished = at::zeros({k}, long_options.dtype(at::kBool));
  auto scores = at::full({1, k}, -std::numeric_limits<float>::infinity(), long_options.dtype(at::kFloat));
  scores.select(1, 0).fill_(0.0);  // all beams start identical: expand only the first
  const int64_t first_limit = limits.min().item<int64_t>();
  bool any_finished = false;
  for (int64_t t = 0; t < steps; ++t) {
    auto lp = next_log_probs(m, tokens.select(1, t), t, cache, cross_keys, cross_values, memory_mask);  // (k, vocab)
    if (t >= first_limit) {
      restrict_to_eos(lp, finished, limits.le(t) & finished.logical_not(), eos);
    } else if (any_finished) {
      restrict_to_eos(lp, finished, at::zeros_like(finished), eos);
    }
    const int64_t vocab = lp.size(-1);
    auto [top_scores, top] = top_of_sums(scores, lp);  // (1, k)
    auto beam_index = top.div(vocab, "floor").view({-1});  // (k,) rows of the previous step
    auto token = top.remainder(vocab).view({-1});
    auto was_finished = finished.index_select(0, beam_index);
    tokens = tokens.index_select(0, beam_index);
    step_lp = step_lp.index_select(0, beam_index);
    lengths = lengths.index_select(0, beam_index);
    tokens.select(1, t + 1).copy_(at::where(was_finished, pad, token));
    auto chosen_lp = lp.index({beam_index, token});
    step_lp.select(1, t).copy_(at::where(was_finished, 0.0, chosen_lp));
    lengths += was_finished.logical_not().to(at::kLong);
    finished = was_finished | token.eq(eos);
    scores = top_scores;
    cache.reorder(beam_index, t + 1);
    if (finished.all().item<bool>()) break;
    any_finished = finished.any().item<bool>();
  }
  return {tokens, step_lp, lengths, scores.view({-1})};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("row_pack", &row_product::pack, "A float32 (out, in) weight in the row kernel's layout (see row_product.h)",
        py::arg("weight"));
  m.def("row_product", &row_product_multiply, "x (rows, in) times a row_pack'ed weight plus bias (see row_product.h)",
        py::arg("x"), py::arg("row_packed"), py::arg("bias").none(true), py::arg("out"));
  py::class_<Int8Products>(m, "Int8Products", "The int8 copy's packed products, gathered once per decoding run")
      .def(py::init<const std::vector<py::object>&>());
  m.def("decoder_step", &decoder_step, "One cached decoding step through every decoder layer (see decoder_step.cpp)",
        py::arg("x"), py::arg("tensors"), py::arg("packed"), py::arg("row_packed"), py::arg("self_keys"),
        py::arg("self_values"), py::arg("length"), py::arg("cross_keys"), py::arg("cross_values"),
        py::arg("memory_mask"), py::arg("heads"), py::arg("eps"), py::arg("norm_first"), py::arg("activation"),
        py::arg("wide"), py::arg("int8").none(true));
  m.def("encoder_layers", &encoder_layers, "Every encoder layer over an unpadded batch (see decoder_step.cpp)",
        py::arg("x"), py::arg("tensors"), py::arg("packed"), py::arg("row_packed"), py::arg("heads"), py::arg("eps"),
        py::arg("norm_first"), py::arg("activation"), py::arg("wide"), py::arg("int8").none(true));
  py::class_<SearchModel>(m, "SearchModel", "A translation model's tensors for the search loops, gathered once")
      .def(py::init<std::vector<Tensor>, std::vector<Tensor>, std::vector<Tensor>, const Int8Products*, int64_t,
                    double, bool, int64_t, int64_t, Tensor, double, Tensor, std::optional<Tensor>,
                    std::optional<Tensor>, double, Tensor, Tensor, std::optional<Tensor>, std::optional<Tensor>,
                    const py::object&>(),
           py::arg("tensors"), py::arg("packed"), py::arg("row_packed"), py::arg("int8").none(true), py::arg("heads"),
           py::arg("eps"), py::arg("norm_first"), py::arg("activation"), py::arg("wide"), py::arg("embed"),
           py::arg("scale"),
           py::arg("table"), py::arg("final_weight").none(true), py::arg("final_bias").none(true),
           py::arg("final_eps"), py::arg("out_weight"), py::arg("out_bias"), py::arg("out_packed").none(true),
           py::arg("out_row_packed").none(true), py::arg("out_int8").none(true));
  m.def("decode_attention", &decode_attention::attend, "Attention of one query position (see decode_attention.h)",
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask").none(true));
  m.def("top_of_sums", &top_of_sums, "Beam search's top k of scores plus log-probabilities (see decoder_step.cpp)",
        py::arg("scores"), py::arg("lp"));
  m.def("greedy_search", &greedy_search, "Greedy search with the loop in C++ (see decoder_step.cpp)", py::arg("model"),
        py::arg("cross_keys"), py::arg("cross_values"), py::arg("memory_mask"), py::arg("limits"), py::arg("bos"),
        py::arg("eos"), py::arg("steps"), py::arg("capacity"));
  m.def("beam_search", &beam_search, "Beam search of one sentence with the loop in C++ (see decoder_step.cpp)",
        py::arg("model"), py::arg("cross_keys"), py::arg("cross_values"), py::arg("memory_mask"), py::arg("limits"),
        py::arg("bos"), py::arg("eos"), py::arg("pad"), py::arg("steps"), py::arg("capacity"));
}
