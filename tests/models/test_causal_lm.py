"""The decoder-only model: causality, cache == recomputation (also after left padding), padding and batch
invariance, save/load, configuration checks, and a tiny model that learns to copy."""

import pytest
import torch
from safetensors.torch import load_file

from tformer import CausalLM, CausalLMConfig
from tformer.decoding.interface import DecodingModel
from tformer.errors import ConfigError, ModelFolderError

VOCAB = 37


def gpt2_style(**fields) -> CausalLMConfig:
    base = dict(vocab_size=VOCAB, d_model=24, num_layers=2, num_heads=3, d_ff=40, max_len=32, dropout=0.0,
                pad_id=0, bos_id=1, eos_id=2)
    return CausalLMConfig(**{**base, **fields})


def llama_style(**fields) -> CausalLMConfig:
    base = dict(vocab_size=VOCAB, d_model=24, num_layers=2, num_heads=6, num_kv_heads=2, d_ff=40, max_len=32)
    return CausalLMConfig.llama(**{**base, **fields})


CONFIGS = {
    "gpt2": gpt2_style,
    "llama-gqa": llama_style,
    "llama-tied-mha": lambda: llama_style(num_kv_heads=None, tie_embeddings=True),
}


@pytest.fixture(params=sorted(CONFIGS))
def model(request) -> CausalLM:
    return CausalLM(CONFIGS[request.param]()).eval()


def tokens(batch: int, length: int) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length))


def left_pad(rows: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = True
    return ids, mask


@torch.no_grad()
def test_logits_shape_and_causality(model):
    x = tokens(2, 7)
    logits = model(x)
    assert logits.shape == (2, 7, VOCAB)
    changed = x.clone()
    changed[:, 4] = (changed[:, 4] + 1 - 3) % (VOCAB - 3) + 3
    after = model(changed)
    torch.testing.assert_close(after[:, :4], logits[:, :4])
    assert (after[:, 4:] - logits[:, 4:]).abs().max() > 1e-4


@torch.no_grad()
def test_cache_equals_full_recomputation(model):
    x = tokens(3, 9)
    full = model(x)
    cache = model.new_cache(capacity=2)  # grows while decoding
    pieces = [model.decode(x[:, :4], cache=cache).logits]
    pieces += [model.decode(x[:, t : t + 1], cache=cache).logits for t in range(4, 7)]
    pieces.append(model.decode(x[:, 7:], cache=cache).logits)
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9
    assert cache.self_attn[0].keys.size(1) == model.config.kv_heads


@torch.no_grad()
def test_left_padding_and_batching_change_nothing(model):
    rows = [tokens(1, n)[0] for n in (5, 9, 2)]
    ids, mask = left_pad(rows)
    batched = model(ids, mask)
    for i, row in enumerate(rows):
        alone = model(row[None])
        torch.testing.assert_close(batched[i, ids.size(1) - len(row):], alone[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_cache_after_left_padding_equals_recomputation_of_each_row(model):
    rows = [tokens(1, n)[0] for n in (3, 6)]
    ids, mask = left_pad(rows)
    follow = tokens(2, 4)
    cache = model.new_cache()
    prompt_logits = model.decode(ids, mask, cache=cache).logits
    steps = [model.decode(follow[:, t : t + 1], cache=cache).logits for t in range(4)]
    for i, row in enumerate(rows):
        alone = model(torch.cat([row, follow[i]])[None])[0]
        torch.testing.assert_close(prompt_logits[i, -1], alone[len(row) - 1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.cat(steps, 1)[i], alone[len(row):], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_decoding_interface_with_leading_pads(model):
    assert isinstance(model, DecodingModel)
    rows = [tokens(1, n)[0] for n in (4, 7)]
    ids, _ = left_pad(rows, pad_id=model.config.pad_id)
    cache = model.new_cache()
    log_probs = model.next_token_log_probs(ids, cache)
    assert log_probs.shape == (2, VOCAB) and log_probs.dtype == torch.float32
    for i, row in enumerate(rows):
        expected = torch.log_softmax(model(row[None])[0, -1], dim=-1)
        torch.testing.assert_close(log_probs[i], expected, atol=1e-5, rtol=1e-5)
    cache.reorder(torch.tensor([1, 1]))
    again = model.next_token_log_probs(torch.tensor([[5], [5]]), cache)
    torch.testing.assert_close(again[0], again[1])
    expected = torch.log_softmax(model(torch.cat([rows[1], torch.tensor([5])])[None])[0, -1], dim=-1)
    torch.testing.assert_close(again[0], expected, atol=1e-5, rtol=1e-5)


def test_save_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    loaded = CausalLM.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    x = tokens(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.num_parameters() == model.num_parameters()
    if model.config.tie_embeddings:
        assert loaded.output.weight is loaded.embed.weight


def test_a_float16_save_loads_back_as_float32_with_each_weight_rounded(model, tmp_path):
    model.save_pretrained(tmp_path / "m16", dtype=torch.float16)
    assert {t.dtype for t in load_file(str(tmp_path / "m16" / "model.safetensors")).values()} == {torch.float16}
    loaded = CausalLM.from_pretrained(tmp_path / "m16")
    for name, weight in model.state_dict_untied().items():
        stored = loaded.state_dict()[name]
        assert stored.dtype == torch.float32
        assert torch.equal(stored, weight.to(torch.float16).float()), name


def test_tied_embeddings_are_counted_once():
    tied, untied = CausalLM(gpt2_style()), CausalLM(gpt2_style(tie_embeddings=False))
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * 24


def test_config_json_round_trip_and_validation():
    config = llama_style(rope_base=500.0)
    assert CausalLMConfig.from_json(config.to_json()) == config
    bad = [
        (dict(num_kv_heads=4), "num_kv_heads"),
        (dict(positions="sinusoid"), "'sinusoid'"),
        (dict(norm="batchnorm"), "'batchnorm'"),
        (dict(activation="tanh"), "'tanh'"),
        (dict(num_heads=5), "num_heads=5"),
        (dict(d_model=18, num_heads=6, num_kv_heads=None), "head_dim"),  # rotary needs an even head_dim
        (dict(eos_id=VOCAB), str(VOCAB)),
        (dict(dropout=1.5), "1.5"),
    ]
    for fields, named in bad:
        with pytest.raises(ConfigError, match=named):
            llama_style(**fields)
    with pytest.raises(ConfigError, match="unknown field"):
        CausalLMConfig.from_dict({"d_model": 24, "heads": 3})


def test_prompt_longer_than_context_is_one_clear_error():
    model = CausalLM(gpt2_style(max_len=8)).eval()
    with pytest.raises(ValueError, match=r"9 tokens .* \(max_len=8\)"):
        model(tokens(1, 9))
    cache = model.new_cache()
    model.decode(tokens(1, 8), cache=cache)
    with pytest.raises(ValueError, match="max_len=8"):
        model.decode(tokens(1, 1), cache=cache)


def test_bad_folder_names_what_is_missing(tmp_path):
    with pytest.raises(ModelFolderError, match="config.json"):
        CausalLM.from_pretrained(tmp_path)


@pytest.mark.parametrize("style", ["gpt2", "llama-gqa"])
def test_tiny_model_learns_to_copy(style):
    """Sequences "x1..x5 SEP x1..x5": after training, greedy decoding with the cache copies unseen prefixes."""
    torch.manual_seed(0)
    config = CONFIGS[style]() if style != "gpt2" else gpt2_style(d_model=48, num_heads=4, d_ff=96)
    if style == "llama-gqa":
        config = llama_style(d_model=48, num_heads=4, num_kv_heads=2, d_ff=96)
    model = CausalLM(config)
    sep, n = 3, 5
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(350):
        x = torch.randint(4, VOCAB, (32, n))
        seq = torch.cat([x, torch.full((32, 1), sep), x], 1)  # (32, 11)
        logits = model(seq[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits[:, n:].reshape(-1, VOCAB), seq[:, n + 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x = torch.randint(4, VOCAB, (16, n))
    out = torch.cat([x, torch.full((16, 1), sep)], 1)
    cache = model.new_cache()
    with torch.no_grad():
        step = out
        for _ in range(n):
            step = model.next_token_log_probs(step, cache).argmax(-1, keepdim=True)
            out = torch.cat([out, step], 1)
    accuracy = (out[:, n + 1:] == x).float().mean().item()
    assert accuracy > 0.9, f"copied {accuracy:.0%} of tokens (loss {loss.item():.3f})"


def test_int8_copy_stays_close_to_float():
    from tformer.models.causal_lm import quantize_int8
    from tformer.nn.quantized import Int8WeightOnlyLinear

    model = CausalLM(llama_style(d_model=48, num_heads=6, num_kv_heads=3, tie_embeddings=True)).eval()
    x = tokens(3, 10)
    for kind in ("weight_only", "dynamic"):
        quantized = quantize_int8(model, kind=kind)
        with torch.no_grad():
            exact, approx = model(x), quantized(x)
        assert (approx - exact).abs().max() < 0.05 * exact.abs().max(), kind
        assert (approx.argmax(-1) == exact.argmax(-1)).float().mean() > 0.9, kind
    assert isinstance(quantize_int8(model).output, Int8WeightOnlyLinear)  # weight-only is the default
    assert model.output.weight is model.embed.weight  # the float model is untouched


def test_weight_only_int8_copy_matches_its_dequantized_weights_and_decodes_like_float():
    """With float32 products the copy is the float model with its weights rounded (nothing else changes). With
    the default bfloat16 products it picks float32's greedy token at nearly every step of float32's greedy
    continuation (teacher-forced: one differing token would otherwise change every later one)."""
    from tformer.decoding.generate import GenerationConfig, generate_tokens
    from tformer.models.causal_lm import quantize_int8

    model = CausalLM(llama_style(d_model=48, num_heads=6, num_kv_heads=3, d_ff=64)).eval()
    exact_copy = quantize_int8(model, compute_dtype=torch.float32)
    rounded = CausalLM(model.config).eval()
    rounded.load_state_dict(model.state_dict())
    for name, module in exact_copy.named_modules():
        if hasattr(module, "dequantized_weight"):
            rounded.get_submodule(name).weight.data.copy_(module.dequantized_weight())
    x = tokens(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(exact_copy(x), rounded(x), rtol=1e-4, atol=1e-4)
    prompts = tokens(4, 5)
    config = GenerationConfig(max_new_tokens=8, eos_ids=[-1])
    greedy = torch.stack(list(generate_tokens(model, prompts.tolist(), config)), 1)  # (4, 8)
    with torch.no_grad():
        logits = quantize_int8(model)(torch.cat([prompts, greedy[:, :-1]], 1))  # (4, 12, vocab)
    assert (logits[:, 4:].argmax(-1) == greedy).float().mean() > 0.9


def test_int4_copy_keeps_q4_1_weights_and_decodes_like_float():
    """Layers whose weights are already 4-bit groups (as read from a Q4_1 GGUF file) keep them, but for bfloat16
    scales; the copy then picks float32's greedy token at nearly every step of float32's greedy continuation."""
    from tformer.decoding.generate import GenerationConfig, generate_tokens
    from tformer.models.causal_lm import quantize_int4
    from tformer.nn.quantized import Int4WeightOnlyLinear

    model = CausalLM(llama_style(d_model=64, num_heads=4, num_kv_heads=2, d_ff=96)).eval()
    with torch.no_grad():  # round every layer weight to 4-bit groups, as a Q4_1 file holds them
        for module in model.layers.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(Int4WeightOnlyLinear(module.weight, None).dequantized_weight())
    quantized = quantize_int4(model)
    layers = [m for m in quantized.layers.modules() if isinstance(m, Int4WeightOnlyLinear)]
    assert len(layers) == 2 * 4 and not any(m.why_not_kernel for m in layers)
    assert torch.equal(layers[0].dequantized_weight(), model.layers[0].self_attn.in_proj.weight)
    prompts = tokens(4, 5)
    greedy = torch.stack(list(generate_tokens(model, prompts.tolist(), GenerationConfig(max_new_tokens=8,
                                                                                         eos_ids=[-1]))), 1)
    with torch.no_grad():
        logits = quantized(torch.cat([prompts, greedy[:, :-1]], 1))  # (4, 12, vocab)
    assert (logits[:, 4:].argmax(-1) == greedy).float().mean() > 0.9


def test_bfloat16_copy_stays_close_to_float(tmp_path):
    """Loaded in bfloat16 (the rotary angles stay float32: tests/nn/test_rotary.py)."""
    model = CausalLM(llama_style()).eval()
    model.save_pretrained(tmp_path / "m")
    half = CausalLM.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    assert half.embed.weight.dtype == torch.bfloat16
    x = tokens(2, 30)
    with torch.no_grad():
        exact, approx = model(x), half(x).float()
    assert (approx - exact).abs().max() < 0.1 * exact.abs().max()
