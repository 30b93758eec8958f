"""CTranslate2 export: greedy translations of the exported model equal tformer's."""

import pytest
import torch

from tformer.cli.main import main
from tformer.decoding.greedy import greedy_search
from tformer.decoding.translator import Translator
from tformer.interop.ctranslate2 import CTranslate2Translator, export_ctranslate2

pytest.importorskip("ctranslate2", reason="the CTranslate2 export needs the optional ctranslate2 package")


def test_greedy_translations_identical_on_a_sample(tiny_translator, validation_sentences, tmp_path):
    export_ctranslate2(tiny_translator, tmp_path)
    ct2 = CTranslate2Translator(tmp_path, threads=1)
    limits = dict(max_len_a=0.0, max_len_b=9)  # one limit for all, as CTranslate2 takes one per batch
    ours = [hyps[0].tokens for hyps in tiny_translator.search(validation_sentences, beam=1, **limits)]
    assert any(ours)
    assert ct2.search(validation_sentences, beam=1, batch_size=5, **limits) == ours
    assert ct2.translate(validation_sentences, beam=1, **limits) == tiny_translator.translate(
        validation_sentences, beam=1, **limits)
    single = ct2.translate(validation_sentences[0], beam=1, **limits)  # one string, one translation
    assert single == tiny_translator.translate(validation_sentences[0], beam=1, **limits)
    with pytest.raises(TypeError, match="string or a list of strings"):
        ct2.translate(42)


def test_greedy_identical_with_tformers_own_length_limits(tiny_translator, validation_sentences, tmp_path):
    export_ctranslate2(tiny_translator, tmp_path)
    ct2 = CTranslate2Translator(tmp_path, threads=1)
    eos = tiny_translator.model.config.eos_id
    for text in validation_sentences[:6]:  # one at a time: each sentence gets its own limit
        src = torch.tensor([tiny_translator.encode_sources([text])[0] + [eos]])  # (1, src_len)
        expected = greedy_search(tiny_translator.model, src)[0].tokens
        assert ct2.search([text], beam=1) == [expected]


def test_cli_exports_both_formats(tiny_translator, validation_sentences, tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_translator.save_pretrained(model_dir)
    assert main(["export", str(model_dir), "--to", "ctranslate2", "--out", str(tmp_path / "ct2")]) == 0
    assert main(["export", str(model_dir), "--to", "hf-marian", "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "config.json").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()
    reloaded = Translator.from_pretrained(model_dir)
    limits = dict(max_len_a=0.0, max_len_b=7)
    assert CTranslate2Translator(tmp_path / "ct2", threads=1).translate(validation_sentences, beam=1, **limits) == \
        reloaded.translate(validation_sentences, beam=1, **limits)
    assert main(["export", str(model_dir), "--to", "hf-marian", "--out", str(tmp_path / "x"),
                 "--quantization", "int8"]) == 1
    assert "--quantization applies to --to ctranslate2 only" in capsys.readouterr().err
