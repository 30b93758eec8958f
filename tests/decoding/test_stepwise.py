"""Step-by-step generation (decoding/stepwise.py) and chat prompts (decoding/chat.py): the same tokens as
generate_tokens within the context, each step's probabilities from the distribution it sampled, text pieces that
join to generate()'s text, a window that slides past the context, and conversations cut to fit."""

import pytest
import torch
from tokenizers import Tokenizer

from tformer.decoding.chat import chat_prompt_ids, check_messages, end_ids, stream_reply
from tformer.decoding.generate import GenerationConfig, generate, generate_tokens, next_token_scores
from tformer.decoding.stepwise import continue_text, generation_steps
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.text.chars import CharTokenizer
from tformer.text.chat_tokenizer import ChatTokenizer

TEXT = "abcdefghij klmnop.\nsu"
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'][0] }}{{ m['content'] }}<|im_end|>{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>a{% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.from_text(TEXT)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(3)
    config = CausalLMConfig(vocab_size=tokenizer.vocab_size + 2, d_model=24, num_layers=2, num_heads=3, d_ff=40,
                            max_len=23, dropout=0.0, pad_id=0, bos_id=0, eos_id=0)
    return CausalLM(config).eval()


def chat_tokenizer(tokenizer):
    hf = Tokenizer.from_str(tokenizer.tokenizer.to_str())
    hf.add_special_tokens(["<|im_start|>", "<|im_end|>"])  # ids vocab_size, vocab_size + 1
    return ChatTokenizer(hf, TEMPLATE, {"eos": 0})


SETTINGS = [dict(), dict(temperature=0.9, seed=4), dict(temperature=1.3, top_k=5, top_p=0.8, seed=7,
                                                         repetition_penalty=1.4)]


@pytest.mark.parametrize("settings", SETTINGS)
def test_same_tokens_as_generate_tokens_within_the_context(model, tokenizer, settings):
    prompt = tokenizer.encode("abc de")
    config = GenerationConfig(max_new_tokens=12, eos_ids=[-1], **settings)
    expected = [int(t[0]) for t in generate_tokens(model, [prompt], config)]
    assert [s.token_id for s in generation_steps(model, prompt, config)] == expected


def test_step_probabilities_are_the_sampled_distribution(model, tokenizer):
    prompt = tokenizer.encode("hij")
    config = GenerationConfig(max_new_tokens=4, temperature=0.7, top_k=6, seed=1, eos_ids=[-1])
    steps = list(generation_steps(model, prompt, config, top=8))
    ids = list(prompt)
    for step in steps:
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[:, -1].float()
        seen = torch.zeros(1, model.config.vocab_size, dtype=torch.bool)
        probs = next_token_scores(logits, seen, config).softmax(-1)[0]
        assert step.prob == pytest.approx(float(probs[step.token_id]), abs=1e-5)
        listed = [p for _, p in step.candidates]
        assert len(listed) == 8 and listed == sorted(listed, reverse=True)
        assert sum(p > 0 for p in listed) <= 6  # top-k 6: the rest have probability 0
        ids.append(step.token_id)


def test_pieces_join_to_generate_text_with_stop_strings(model, tokenizer):
    prompt = "abc"
    for stop in ([], ["e"], ["kl", "d"]):
        config = GenerationConfig(max_new_tokens=15, temperature=1.0, seed=2, stop=stop)
        pieces = [piece for piece, _ in continue_text(model, tokenizer, tokenizer.encode(prompt), config)]
        assert "".join(pieces) == generate(model, tokenizer, [prompt], config)[0]


def test_the_window_slides_past_the_context(model, tokenizer):
    prompt = tokenizer.encode("abcdefghij")  # 10 of the 23 positions
    config = GenerationConfig(max_new_tokens=40, temperature=1.0, seed=5, eos_ids=[-1])
    assert len(list(generation_steps(model, prompt, config))) == 40
    assert len(list(generation_steps(model, prompt, config, slide=False))) == 23 - 10


def test_a_prompt_that_fills_the_context_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match="max_len=23"):
        next(generation_steps(model, tokenizer.encode("a" * 23), GenerationConfig()))


def test_chat_messages_are_checked():
    with pytest.raises(ValueError, match="empty"):
        check_messages([])
    with pytest.raises(ValueError, match=r"messages\[1\]"):
        check_messages([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
    with pytest.raises(ValueError, match="last message"):
        check_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def test_old_turns_are_dropped_to_fit_and_the_system_message_stays(model, tokenizer):
    chat = chat_tokenizer(tokenizer)
    messages = [{"role": "system", "content": "ab"}, {"role": "user", "content": "cd"},
                {"role": "assistant", "content": "ef"}, {"role": "user", "content": "gh"}]
    ids = chat_prompt_ids(model, chat, messages, max_new_tokens=10)  # 13 of 23 positions left for the prompt
    text = chat.decode(ids, skip_special_tokens=False)
    assert text.startswith("<|im_start|>sab") and text.endswith("<|im_start|>ugh<|im_end|><|im_start|>a")
    assert "cd" not in text and len(ids) <= 13
    with pytest.raises(ValueError, match="max_len=23"):
        chat_prompt_ids(model, chat, [{"role": "user", "content": "abcdefghij"}], max_new_tokens=10)


def test_reply_ends_at_the_end_of_turn_token(model, tokenizer):
    chat = chat_tokenizer(tokenizer)
    end = chat.tokenizer.token_to_id("<|im_end|>")
    assert end in end_ids(model, chat)
    messages = [{"role": "user", "content": "ab"}]
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=1)
    reply = "".join(stream_reply(model, chat, messages, config))
    forced = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=1, eos_ids=[-1])
    free = [s.token_id for s in generation_steps(model, chat_prompt_ids(model, chat, messages, 8), forced)]
    ends = [i for i, t in enumerate(free) if t in end_ids(model, chat)]
    assert reply == chat.decode(free[: ends[0]] if ends else free)
