"""tformer generate and tformer chat on a tiny character model folder (and, slow, on smollm2)."""

import json

import pytest
import torch

from tformer.cli.main import main
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.text.chars import CharTokenizer

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'][0] }}{{ m['content'] }}<|im_end|>{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>a{% endif %}")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    """A tformer train-lm style run folder: the model in final/, a character tokenizer with a chat template."""
    run = tmp_path_factory.mktemp("run")
    final = run / "final"
    tok = CharTokenizer.from_text("abcdefghij klmnop.\nROMEOsu:")
    tok.tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tok.save_pretrained(final)
    (final / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE, "eos_token": "<|im_end|>"}))
    torch.manual_seed(0)
    config = CausalLMConfig(vocab_size=tok.vocab_size, d_model=24, num_layers=1, num_heads=3, d_ff=40, max_len=29,
                            dropout=0.0, pad_id=0, bos_id=0, eos_id=0)
    CausalLM(config).save_pretrained(final)
    return run


def generate(capsys, *args):
    status = main(["generate", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_generate_streams_the_prompt_and_a_reproducible_continuation(lm_dir, capsys):
    args = ["--model", str(lm_dir), "ROMEO:", "--max-new-tokens", "40", "--temperature", "0.8", "--top-k", "5",
            "--seed", "1"]
    status, first, _ = generate(capsys, *args)
    assert status == 0 and first.startswith("ROMEO:")
    assert generate(capsys, *args)[1] == first
    assert generate(capsys, *args[:-1], "2")[1] != first  # another seed, another text (almost surely)


def test_json_trace_lists_every_step_and_its_candidates(lm_dir, capsys):
    status, out, _ = generate(capsys, "--model", str(lm_dir), "ab", "--max-new-tokens", "6", "--temperature",
                              "1.0", "--seed", "3", "--json", "--top", "4")
    assert status == 0
    trace = json.loads(out)
    steps = trace["steps"]
    assert 1 <= len(steps) <= 6 and all(len(s["candidates"]) == 4 for s in steps)
    for s in steps:
        probs = [c["prob"] for c in s["candidates"]]
        assert probs == sorted(probs, reverse=True) and s["prob"] <= probs[0] + 1e-9
    assert trace["text"] == "".join(s["token"] for s in steps if s["token_id"] != 0)  # id 0 ends the text


def test_text_trace_and_plain_output_agree(lm_dir, capsys):
    common = ["--model", str(lm_dir), "ab", "--max-new-tokens", "8", "--temperature", "0.9", "--seed", "5"]
    _, plain, _ = generate(capsys, *common)
    _, traced, _ = generate(capsys, *common, "--trace")
    assert f"text:   {plain.strip()[2:]!r}" in traced


@pytest.mark.parametrize("flag, value", [("--top-p", "0"), ("--top-p", "1.5"), ("--temperature", "-1")])
def test_bad_sampling_settings_stop_at_the_flag(lm_dir, capsys, flag, value):
    with pytest.raises(SystemExit) as stop:
        main(["generate", "--model", str(lm_dir), "ab", flag, value])
    assert stop.value.code == 2 and flag in capsys.readouterr().err


def test_a_prompt_longer_than_the_context_is_one_clear_error(lm_dir, capsys):
    status, _, err = generate(capsys, "--model", str(lm_dir), "a" * 40)
    assert status == 1 and "max_len=29" in err and "40 tokens" in err


def test_chat_reads_messages_and_honours_reset_and_exit(lm_dir, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("ab\n/reset\ncd\n/exit\nnever read\n"))
    assert main(["chat", "--model", str(lm_dir / "final"), "--max-new-tokens", "3", "--system", "su"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 2  # two replies, one line each
    assert "new conversation" in captured.err


def test_chat_once_answers_and_exits(lm_dir, capsys):
    assert main(["chat", "--model", str(lm_dir / "final"), "--once", "ab", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


@pytest.mark.slow
def test_smollm2_knows_the_capital_of_france(capsys):
    assert main(["chat", "--once", "What is the capital of France?", "--max-new-tokens", "20"]) == 0
    assert "Paris" in capsys.readouterr().out
