"""Hugging Face Llama and GPT-2 folders load into CausalLM with the same logits as transformers."""

import json

import pytest
import torch

from tformer import CausalLM
from tformer.errors import ConfigError

transformers = pytest.importorskip("transformers")


def llama_folder(tmp_path, **overrides):
    fields = dict(
        vocab_size=53, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=6,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=500.0,
        tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    config = transformers.LlamaConfig(**{**fields, **overrides})
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms away from 1, so a misplaced norm weight shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.2)
    model.save_pretrained(tmp_path / "llama")
    return model, tmp_path / "llama"


def gpt2_folder(tmp_path, **overrides):
    config = transformers.GPT2Config(
        vocab_size=53, n_embd=24, n_layer=2, n_head=3, n_positions=40, n_inner=None, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=52, eos_token_id=52, **overrides,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.normal_(0.5 if name.endswith("weight") else 0.0, 0.2)
    model.save_pretrained(tmp_path / "gpt2")
    return model, tmp_path / "gpt2"


def left_padded(rows):
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids, mask


@pytest.mark.parametrize("tie", [False, True])
def test_llama_logits_equal_transformers(tmp_path, tie):
    theirs, folder = llama_folder(tmp_path, tie_word_embeddings=tie)
    ours = CausalLM.from_pretrained(folder)
    assert ours.config.kv_heads == 2 and ours.config.rope_base == 500.0 and ours.config.tie_embeddings == tie
    assert ours.num_parameters() == theirs.num_parameters()
    ids = torch.randint(3, 53, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("activation", ["gelu_new", "relu"])
def test_gpt2_logits_equal_transformers(tmp_path, activation):
    theirs, folder = gpt2_folder(tmp_path, activation_function=activation)
    ours = CausalLM.from_pretrained(folder)
    assert ours.num_parameters() == theirs.num_parameters()
    ids = torch.randint(0, 53, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_left_padded_batch_equals_transformers(tmp_path, kind):
    """transformers takes position ids from the mask when generating; our forward does so always."""
    theirs, folder = (llama_folder if kind == "llama" else gpt2_folder)(tmp_path)
    ours = CausalLM.from_pretrained(folder)
    ids, mask = left_padded([[5, 6, 7, 8, 9, 10], [11, 12, 13]])
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = theirs(ids, attention_mask=mask, position_ids=positions).logits
        got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)


def test_greedy_tokens_equal_transformers_generate(tmp_path):
    theirs, folder = llama_folder(tmp_path)
    ours = CausalLM.from_pretrained(folder)
    prompt = torch.tensor([[4, 9, 17, 23, 8]])
    expected = theirs.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    cache, step, got = ours.new_cache(), prompt, prompt
    with torch.no_grad():
        for _ in range(12):
            step = ours.next_token_log_probs(step, cache).argmax(-1, keepdim=True)
            got = torch.cat([got, step], 1)
    assert got.tolist() == expected.tolist()


def test_unknown_architecture_is_named(tmp_path):
    _, folder = gpt2_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "mamba"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'mamba'"):
        CausalLM.from_pretrained(folder)


def test_folder_tokenizer_and_chat_template_equal_transformers(tmp_path):
    """A byte-level BPE saved as tokenizer.json with a chat template in tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from tformer.interop.hf_causal import load_chat_tokenizer

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["the cat sat on the mat", "what is the capital of france", "paris is the capital"] * 20
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder = tmp_path / "tok"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template, "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}))
    ours = load_chat_tokenizer(folder)
    theirs = transformers.AutoTokenizer.from_pretrained(str(folder))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = ours.apply_chat_template(messages)
    assert prompt == theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for text in (prompt, "the cat sat on the mat, 2 times! ünï"):
        assert ours.encode(text) == theirs(text, add_special_tokens=False)["input_ids"]
        assert ours.decode(ours.encode(text), skip_special_tokens=False) == text
    assert (ours.bos_id, ours.eos_id, ours.pad_id) == (1, 2, 0)
