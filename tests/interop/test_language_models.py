"""Finding a causal language model by name: a run folder means its final/ model, a bundled short name its folder
under models/ ($TFORMER_MODELS), anything else goes to CausalLM.from_pretrained as it is."""

from pathlib import Path

from tformer.interop.language_models import load_language_model, resolve_language_model
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.text.chars import CharTokenizer


def save_tiny(folder: Path) -> None:
    tokenizer = CharTokenizer.from_text("abc de")
    tokenizer.save_pretrained(folder)
    config = CausalLMConfig(vocab_size=tokenizer.vocab_size, d_model=24, num_layers=1, num_heads=3, d_ff=40,
                            max_len=16, pad_id=0, bos_id=0, eos_id=0)
    CausalLM(config).save_pretrained(folder)


def test_a_run_folder_means_its_final_model(tmp_path):
    save_tiny(tmp_path / "run" / "final")
    assert resolve_language_model(tmp_path / "run") == tmp_path / "run" / "final"
    model, tokenizer = load_language_model(tmp_path / "run")
    assert model.config.vocab_size == tokenizer.vocab_size and not model.training


def test_bundled_short_name_and_other_names(tmp_path, monkeypatch):
    monkeypatch.setenv("TFORMER_MODELS", str(tmp_path))
    assert resolve_language_model("shakespeare-char") == tmp_path / "shakespeare-char"
    assert resolve_language_model("smollm2") == "smollm2"
    assert resolve_language_model(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_int8_and_int4_loads_quantize_the_float_model(tmp_path):
    from tformer.nn.quantized import Int8WeightOnlyLinear

    save_tiny(tmp_path / "m")
    for dtype in ("int8", "int4"):  # d_model 24: no whole groups of 32 for int4, so int8 layers there too
        model, _ = load_language_model(tmp_path / "m", dtype)
        assert isinstance(model.layers[0].ffn.linear1, Int8WeightOnlyLinear) and not model.training
