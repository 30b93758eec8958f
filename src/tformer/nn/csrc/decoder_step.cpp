// One incremental decoding step through a stack of Transformer decoder layers, in C++.
//
// The same computation as tformer.nn.stacks.Decoder with a KV cache and one new target position per sentence.
// This file mirrors tformer/nn/native.py, which builds it on first use (falling back to Python without a
// compiler), decides when it applies, and gathers each layer's tensors in the order of its LAYER_TENSORS, the
// order `LayerTensor` below names; a change to one side goes to the other. It calls the same PyTorch kernels in
// the same order as the Python modules (tformer/nn/layers.py, attention.py, feedforward.py, and linear.py's choice
// of product form), so results are identical; what it removes is the Python interpreter's time between the
// hundreds of operator calls of a step, which at batch 1 is about as long as the arithmetic itself.
#include <torch/extension.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/api/object.h>

#include <string>
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

// act(x (rows, in) times w (out, in), plus b): (rows, out); activation -1 none, 0 relu, 1 gelu, 2 gelu (tanh).
// The form tformer.nn.linear.fast_linear picks, so that the results are the same: the plain product for a dtype
// other than float32 (bfloat16 weights); one row of a layer less than `wide_output` times wider out than in, by row
// blocks (then the activation); otherwise oneDNN with the weight reordered once (`packed`) and the activation
// fused; without a packed copy, row blocks for one row, else the plain product.
Tensor product(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& packed, int64_t wide_output,
               int64_t activation = -1) {
  if (x.scalar_type() != at::kFloat) return activate(at::linear(x, w, b), activation);
  const int64_t rows = x.size(0), out = w.size(0);
  if (rows == 1 && out < wide_output * w.size(1)) return activate(one_row(x, w, b), activation);
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

// x + sublayer(x) then LayerNorm (post-norm), or x + sublayer(LayerNorm(x)) (pre-norm).
template <typename Sublayer>
Tensor add_norm(const Tensor& x, const Tensor& norm_w, const Tensor& norm_b, double eps, bool norm_first,
                Sublayer sublayer) {
  const int64_t d = x.size(1);
  if (norm_first) return x + sublayer(at::layer_norm(x, {d}, norm_w, norm_b, eps));
  return at::layer_norm(x + sublayer(x), {d}, norm_w, norm_b, eps);
}

}  // namespace

// x: (batch, d_model), the new position's embedding. tensors: kTensorsPerLayer per layer, at the offsets of
// LayerTensor; packed: the same layout with oneDNN copies of the weights (undefined tensors elsewhere), or empty.
// self_keys/self_values: (batch, heads, capacity, head_dim) buffers holding `length` positions; the new one is
// written at `length`. cross_keys/cross_values: (batch, heads, src_len, head_dim). memory_mask: (batch, 1, 1,
// src_len) bool or None. activation: 0 relu, 1 gelu (erf), 2 gelu (tanh), as native.py's ACTIVATION_CODES; wide:
// tformer.nn.linear.WIDE_OUTPUT. int8: the int8 copy's products (the weight and bias tensors at their offsets are
// then unused), or None.
// Returns (batch, d_model), before any final LayerNorm.
Tensor decoder_step(Tensor x, const std::vector<Tensor>& tensors, const std::vector<Tensor>& packed,
                    const std::vector<Tensor>& self_keys, const std::vector<Tensor>& self_values, int64_t length,
                    const std::vector<Tensor>& cross_keys, const std::vector<Tensor>& cross_values,
                    const std::optional<Tensor>& memory_mask, int64_t heads, double eps, bool norm_first,
                    int64_t activation, int64_t wide, const Int8Products* int8) {
  const int64_t batch = x.size(0), d = x.size(1), head_dim = d / heads;
  const int64_t layers = static_cast<int64_t>(self_keys.size());
  TORCH_CHECK(static_cast<int64_t>(tensors.size()) == layers * kTensorsPerLayer, "decoder_step: expected ",
              layers * kTensorsPerLayer, " tensors, got ", tensors.size());
  const Tensor none;
  for (int64_t l = 0; l < layers; ++l) {
    const Tensor* t = &tensors[l * kTensorsPerLayer];
    const Tensor* p = packed.empty() ? nullptr : &packed[l * kTensorsPerLayer];
    auto pk = [&](int64_t i) -> const Tensor& { return p == nullptr ? none : p[i]; };
    // The product whose weight is at offset i, by int8 or float weights, as the layer computes it.
    auto prod = [&](const Tensor& h, int64_t i, int64_t act = -1) {
      if (int8 != nullptr && !int8->params[l * kTensorsPerLayer + i].isNone())
        return int8_product(h, int8->params[l * kTensorsPerLayer + i], act);
      return product(h, t[i], t[i + 1], pk(i), wide, act);
    };

    // Masked self-attention: the new position's key and value go into the cache, then all cached ones are attended.
    x = add_norm(x, t[kSelfNormWeight], t[kSelfNormBias], eps, norm_first, [&](const Tensor& h) {
      auto qkv = prod(h, kSelfQkvWeight).view({batch, 3 * heads, 1, head_dim});
      self_keys[l].select(2, length).copy_(qkv.narrow(1, heads, heads).squeeze(2));
      self_values[l].select(2, length).copy_(qkv.narrow(1, 2 * heads, heads).squeeze(2));
      auto keys = self_keys[l].narrow(2, 0, length + 1), values = self_values[l].narrow(2, 0, length + 1);
      auto attended = at::scaled_dot_product_attention(qkv.narrow(1, 0, heads), keys, values);
      return prod(attended.reshape({batch, d}), kSelfOutWeight);
    });
    // Encoder-decoder attention over the cached keys and values of the encoder's output.
    x = add_norm(x, t[kCrossNormWeight], t[kCrossNormBias], eps, norm_first, [&](const Tensor& h) {
      auto q = prod(h, kCrossQueryWeight).view({batch, heads, 1, head_dim});
      auto attended = at::scaled_dot_product_attention(q, cross_keys[l], cross_values[l], memory_mask);
      return prod(attended.reshape({batch, d}), kCrossOutWeight);
    });
    // Position-wise feed-forward.
    x = add_norm(x, t[kFfnNormWeight], t[kFfnNormBias], eps, norm_first, [&](const Tensor& h) {
      return prod(prod(h, kFfnInWeight, activation), kFfnOutWeight);
    });
  }
  return x;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  py::class_<Int8Products>(m, "Int8Products", "The int8 copy's packed products, gathered once per decoding run")
      .def(py::init<const std::vector<py::object>&>());
  m.def("decoder_step", &decoder_step, "One cached decoding step through every decoder layer (see decoder_step.cpp)",
        py::arg("x"), py::arg("tensors"), py::arg("packed"), py::arg("self_keys"), py::arg("self_values"),
        py::arg("length"), py::arg("cross_keys"), py::arg("cross_values"), py::arg("memory_mask"), py::arg("heads"),
        py::arg("eps"), py::arg("norm_first"), py::arg("activation"), py::arg("wide"),
        py::arg("int8").none(true));
}
