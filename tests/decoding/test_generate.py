"""Generation with a decoder-only model: greedy equals the argmax of full recomputation, batching and left
padding change nothing, sampling follows its distribution and is reproducible with a seed, the logit cuts keep
what their definitions say, stop strings and EOS end a row, and streaming never splits a character."""

from types import SimpleNamespace

import pytest
import torch

from tformer import CausalLM, CausalLMConfig
from tformer.decoding.generate import GenerationConfig, choose, generate, generate_tokens, next_token_scores, stream
from tformer.errors import ConfigError

VOCAB = 40


class CharTokenizer:
    """Token i is the character chr(ord('a') + i - 3); 0, 1, 2 are pad, BOS and EOS (decoded as nothing)."""

    def encode(self, text):
        return [ord(ch) - ord("a") + 3 for ch in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(ord("a") + i - 3) for i in ids if i > 2)


class ByteTokenizer:
    """One token per UTF-8 byte (id = byte + 3): a character may take several tokens."""

    def encode(self, text):
        return [b + 3 for b in text.encode()]

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i - 3 for i in ids if i > 2).decode("utf-8", errors="replace")


class ScriptedLM:
    """Says the tokens of a script, one per step, whatever the prompt (for the text layer's tests)."""

    def __init__(self, script):
        self.script = script
        self.config = SimpleNamespace(pad_id=0, eos_id=2, max_len=512, vocab_size=259)

    def new_cache(self, capacity=32):
        return SimpleNamespace(step=0)

    def decode(self, ids, mask=None, cache=None, last_only=True):
        logits = torch.zeros(ids.size(0), 1, self.config.vocab_size)
        logits[:, 0, self.script[min(cache.step, len(self.script) - 1)]] = 10.0
        cache.step += 1
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = CausalLMConfig.llama(vocab_size=VOCAB, d_model=24, num_layers=2, num_heads=6, num_kv_heads=2, d_ff=40,
                                  max_len=64)
    return CausalLM(config).eval()


def test_greedy_equals_argmax_of_full_recomputation(model):
    prompt = [5, 9, 12, 7]
    got = torch.stack(list(generate_tokens(model, [prompt], GenerationConfig(max_new_tokens=10, eos_ids=[-1]))))
    seq = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(10):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
    assert got[:, 0].tolist() == seq[0, 4:].tolist()


def test_batched_prompts_of_different_lengths_equal_each_alone(model):
    prompts = [[5, 9, 12, 7], [20], [3, 4, 5, 6, 7, 8, 9]]
    for config in (GenerationConfig(max_new_tokens=8, eos_ids=[-1]),
                   GenerationConfig(max_new_tokens=8, eos_ids=[-1], repetition_penalty=1.3)):
        batched = torch.stack(list(generate_tokens(model, prompts, config)), 1)
        for row, prompt in enumerate(prompts):
            alone = torch.stack(list(generate_tokens(model, [prompt], config)), 1)
            assert batched[row].tolist() == alone[0].tolist()


def test_seeded_sampling_is_reproducible(model):
    config = GenerationConfig(max_new_tokens=12, temperature=1.5, top_k=20, top_p=0.95, seed=7, eos_ids=[-1])
    first = torch.stack(list(generate_tokens(model, [[5, 6]], config)))
    again = torch.stack(list(generate_tokens(model, [[5, 6]], config)))
    other = torch.stack(list(generate_tokens(model, [[5, 6]], GenerationConfig(**{**config.__dict__, "seed": 8}))))
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()


def test_top_k_one_and_tiny_top_p_are_greedy(model):
    greedy = list(generate_tokens(model, [[5, 6]], GenerationConfig(max_new_tokens=6, eos_ids=[-1])))
    for cut in (dict(top_k=1), dict(top_p=1e-6)):
        sampled = list(generate_tokens(model, [[5, 6]], GenerationConfig(max_new_tokens=6, temperature=2.0, seed=1,
                                                                          eos_ids=[-1], **cut)))
        assert torch.stack(sampled).tolist() == torch.stack(greedy).tolist()


def test_cuts_and_penalty_follow_their_definitions():
    logits = torch.tensor([[3.0, -1.0, 2.0, 0.5, -2.0, 1.0]])
    seen = torch.tensor([[True, True, False, False, False, False]])
    penalised = next_token_scores(logits, seen, GenerationConfig(repetition_penalty=2.0))
    assert penalised.tolist() == [[1.5, -2.0, 2.0, 0.5, -2.0, 1.0]]
    top3 = next_token_scores(logits, seen, GenerationConfig(temperature=0.5, top_k=3))
    assert torch.isfinite(top3).sum() == 3 and torch.isfinite(top3[0, [0, 2, 5]]).all()
    torch.testing.assert_close(top3[0, 0], torch.tensor(6.0))  # divided by the temperature
    probs = logits.softmax(-1)[0]  # sorted: 0 (0.56), 2 (0.21), 5 (0.08), 3, 1, 4
    for p in (0.5, 0.7, 0.8, 0.99):
        kept = torch.isfinite(next_token_scores(logits, seen, GenerationConfig(temperature=1.0, top_p=p)))[0]
        order = probs.argsort(descending=True)
        need = int((probs[order].cumsum(0) < p).sum()) + 1  # the smallest prefix whose mass reaches p
        assert kept.sum() == need and kept[order[:need]].all()


def test_sampling_follows_the_softmax():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).expand(20000, 4)
    config = GenerationConfig(temperature=1.0)
    draws = choose(next_token_scores(logits, torch.zeros_like(logits, dtype=torch.bool), config), config,
                   torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / 20000
    torch.testing.assert_close(freq, logits[0].softmax(-1), atol=0.015, rtol=0)


def test_stop_strings_and_eos_end_the_text(model):
    tok = CharTokenizer()
    free = generate(model, tok, ["cfi"], GenerationConfig(max_new_tokens=12, eos_ids=[-1]))[0]
    assert len(free) >= 6  # ids 0-2 decode as nothing
    stop = free[4:6]
    cut = generate(model, tok, ["cfi"], GenerationConfig(max_new_tokens=12, eos_ids=[-1], stop=[stop]))[0]
    assert cut == free[: free.find(stop)]
    assert "".join(stream(model, tok, "cfi", GenerationConfig(max_new_tokens=12, eos_ids=[-1], stop=[stop]))) == cut
    steps = GenerationConfig(max_new_tokens=3, eos_ids=[-1])
    tokens = [int(t) for t in generate_tokens(model, [tok.encode("cfi")], steps)]
    ended = generate(model, tok, ["cfi"], GenerationConfig(max_new_tokens=12, eos_ids=[tokens[1]]))[0]
    assert ended == tok.decode(tokens[: tokens.index(tokens[1])])  # up to the end token's first appearance


def test_stream_never_splits_a_character():
    text = "héllo 😀 wörld ✓"
    tok = ByteTokenizer()
    lm = ScriptedLM(tok.encode(text) + [2])
    pieces = list(stream(lm, tok, "x", GenerationConfig(max_new_tokens=100)))
    assert "".join(pieces) == text == generate(lm, tok, ["x"], GenerationConfig(max_new_tokens=100))[0]
    assert len(pieces) > 5 and all("\ufffd" not in p for p in pieces)
    held = list(stream(lm, tok, "x", GenerationConfig(max_new_tokens=100, stop=["wör"])))
    assert "".join(held) == "héllo 😀 "


def test_bad_settings_name_the_value(model):
    for fields, named in [(dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "1.5"), (dict(temperature=-0.1), "-0.1"),
                          (dict(top_k=-2), "top_k"), (dict(repetition_penalty=0), "repetition_penalty"),
                          (dict(max_new_tokens=-1), "max_new_tokens"), (dict(stop=[""]), "stop")]:
        with pytest.raises(ConfigError, match=named):
            GenerationConfig(**fields)
    with pytest.raises(ValueError, match="max_len=64"):
        list(generate_tokens(model, [[5] * 64]))
