"""benchmarks/causal_lm.py on tiny models: weight bytes per decoding step, the interleaved case with a transformers
side, and the agreement share (1.0 for a side that is the float32 model itself)."""

import pytest
import torch

from tformer.models.causal_lm import CausalLM, CausalLMConfig, quantize_int8

from benchmarks import causal_lm
from tests.serve.test_generation_routes import tiny_language_model


def test_bytes_per_token_counts_every_matrix_but_the_embedding_once_per_dtype():
    config = CausalLMConfig.llama(vocab_size=31, d_model=24, num_layers=2, num_heads=3, num_kv_heads=1, d_ff=40,
                                  max_len=16, tie_embeddings=True)
    model = CausalLM(config)
    matrices = sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed."))
    matrices += model.embed.weight.numel()  # the tied output projection is read once per step
    vectors = sum(p.numel() for p in model.parameters() if p.dim() < 2)
    assert causal_lm.bytes_per_token(model, 4, ("embed.",)) == matrices * 4 + vectors * 4
    rows = sum(p.size(0) for n, p in model.named_parameters(remove_duplicate=False)
               if p.dim() >= 2 and not n.startswith("embed."))
    assert causal_lm.bytes_per_token(model, 1, ("embed.",)) == matrices + rows * 4 + vectors * 4


def test_case_runs_every_side_and_agreement_of_the_model_with_itself_is_one(monkeypatch):
    transformers = pytest.importorskip("transformers")
    model, tokenizer = tiny_language_model()
    hf_config = transformers.LlamaConfig(vocab_size=model.config.vocab_size, hidden_size=24, intermediate_size=40,
                                         num_hidden_layers=1, num_attention_heads=3, max_position_embeddings=64)
    loaded = {"tokenizer": tokenizer, "notes": [], "tformer": model, "tformer-bf16": model,
              "tformer-int8": quantize_int8(model), "hf": transformers.LlamaForCausalLM(hf_config).eval()}
    monkeypatch.setattr(causal_lm, "SYSTEM", "s")
    monkeypatch.setattr(causal_lm, "QUESTION", "ab")
    monkeypatch.setattr(causal_lm, "QUESTIONS", ["ab", "cd", "a b", "dc?"])
    results = causal_lm.run_case(loaded, 3, repeats=2, warmup=0)
    assert set(results) == {"tformer", "tformer-bf16", "tformer-int8", "hf"}
    assert all(r.work == 3 and len(r.seconds) == 2 for r in results.values())
    causal_lm.add_bandwidth_shares(loaded, results, bandwidth=1e9)
    assert all(r.extra["bandwidth_share"] > 0 for r in results.values())
    shares = causal_lm.agreement(loaded, 4, 3, batch=3)
    assert shares["tformer-bf16"] == 1.0 and 0 <= shares["tformer-int8"] <= 1
    with torch.inference_mode():
        assert len(causal_lm.greedy_hf(loaded["hf"], [1, 2, 3], 4)) == 4
