"""benchmarks/causal_lm.py on tiny models: weight bytes per decoding step, the interleaved case with a transformers
side, and the agreement share (1.0 for a side that is the float32 model itself)."""

import pytest
import torch

from tformer.models.causal_lm import CausalLM, CausalLMConfig, quantize_int4, quantize_int8

from benchmarks import causal_lm
from tests.serve.test_generation_routes import tiny_language_model


def test_bytes_per_token_counts_what_each_precision_stores_and_reads():
    config = CausalLMConfig.llama(vocab_size=31, d_model=64, num_layers=2, num_heads=4, num_kv_heads=1, d_ff=96,
                                  max_len=16, tie_embeddings=True)
    model = CausalLM(config)
    layers = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed.")]
    layer_elements, layer_rows = sum(p.numel() for p in layers), sum(p.size(0) for p in layers)
    output_elements, vocab = model.embed.weight.numel(), config.vocab_size  # the tied output is read every step
    vectors = sum(p.numel() for p in model.parameters() if p.dim() < 2)  # norms, float32 at every precision
    assert causal_lm.bytes_per_token(model) == 4 * (layer_elements + output_elements + vectors)
    int8 = layer_elements + output_elements + 2 * (layer_rows + vocab)  # a bfloat16 scale per row
    assert causal_lm.bytes_per_token(quantize_int8(model)) == int8 + 4 * vectors
    fbgemm = layer_elements + output_elements + 4 * (layer_rows + vocab)
    assert causal_lm.bytes_per_token(quantize_int8(model, kind="dynamic")) == fbgemm + 4 * vectors
    int4 = layer_elements / 2 + layer_elements / 32 * 4 + output_elements + 2 * vocab  # bf16 scale and zero a group
    assert causal_lm.bytes_per_token(quantize_int4(model)) == int4 + 4 * vectors


def test_case_runs_every_side_and_agreement_of_the_model_with_itself_is_one(monkeypatch):
    transformers = pytest.importorskip("transformers")
    model, tokenizer = tiny_language_model()
    hf_config = transformers.LlamaConfig(vocab_size=model.config.vocab_size, hidden_size=24, intermediate_size=40,
                                         num_hidden_layers=1, num_attention_heads=3, max_position_embeddings=64)
    loaded = {"tokenizer": tokenizer, "notes": [], "tformer": model, "tformer-bf16": model,
              "tformer-int8": quantize_int8(model), "tformer-int8-dynamic": quantize_int8(model, kind="dynamic"),
              "tformer-int4": quantize_int4(model), "hf": transformers.LlamaForCausalLM(hf_config).eval()}
    monkeypatch.setattr(causal_lm, "SYSTEM", "s")
    monkeypatch.setattr(causal_lm, "QUESTION", "ab")
    monkeypatch.setattr(causal_lm, "QUESTIONS", ["ab", "cd", "a b", "dc?"])
    results = causal_lm.run_case(loaded, 3, repeats=2, warmup=0)
    assert set(results) == {"tformer", "tformer-bf16", "tformer-int8", "tformer-int8-dynamic", "tformer-int4", "hf"}
    assert all(r.work == 3 and len(r.seconds) == 2 for r in results.values())
    causal_lm.add_bandwidth_shares(loaded, results, bandwidth=1e9)
    assert all(r.extra["bandwidth_share"] > 0 for r in results.values())
    shares = causal_lm.agreement(loaded, 4, 3, batch=3)
    assert shares["tformer-bf16"] == 1.0
    assert all(0 <= shares[name] <= 1 for name in ("tformer-int8", "tformer-int8-dynamic", "tformer-int4"))
    with torch.inference_mode():
        assert len(causal_lm.greedy_hf(loaded["hf"], [1, 2, 3], 4)) == 4
