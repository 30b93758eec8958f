"""tformer.pipeline(task): each task answers in Hugging Face's shape, with the same results as the class behind it."""

import pytest
import torch

import tformer
from tformer.models.pipelines import SentenceEncoder, TextClassifier
from tformer.pipeline import TASKS, TextGenerationPipeline, pipeline

from tests.decoding.test_generate import ScriptedLM
from tests.decoding.tiny import SENTENCES, tiny_translator
from tests.models.bert_helpers import save_tiny_classifier, save_tiny_encoder


def test_pipeline_is_a_top_level_name_and_unknown_tasks_list_the_known_ones():
    assert tformer.pipeline is pipeline
    with pytest.raises(ValueError, match="unknown task 'translate'.*translation"):
        pipeline("translate")
    assert {"translation", "text-classification", "feature-extraction"} <= set(TASKS)


def test_translation_gives_one_dict_per_text(tmp_path):
    translator = tiny_translator(eos_bias=0.0)
    translator.save_pretrained(tmp_path)
    translate = pipeline("translation", model=tmp_path)
    expected = translator.translate(SENTENCES, beam=2)
    assert translate(SENTENCES, beam=2) == [{"translation_text": t} for t in expected]
    assert translate(SENTENCES[0], beam=2) == [{"translation_text": expected[0]}]


def test_text_classification_gives_label_and_score(tmp_path):
    save_tiny_classifier(tmp_path, labels=("bad", "good", "meh"))
    classify = pipeline("sentiment-analysis", model=tmp_path)
    probs = TextClassifier.from_pretrained(tmp_path).predict_proba(["awful", "great fun"])
    out = classify(["awful", "great fun"])
    assert [o["label"] for o in out] == [["bad", "good", "meh"][int(k)] for k in probs.argmax(-1)]
    assert [o["score"] for o in out] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-6)
    every = classify("awful", top_k=None)[0]
    assert [d["score"] for d in every] == sorted(probs[0].tolist(), reverse=True)


def test_feature_extraction_gives_sentence_vectors(tmp_path):
    save_tiny_encoder(tmp_path)
    embed = pipeline("feature-extraction", model=tmp_path, device="cpu")
    expected = SentenceEncoder.from_pretrained(tmp_path).encode(["hi there", "bye"])
    torch.testing.assert_close(embed(["hi there", "bye"]), expected)
    torch.testing.assert_close(embed("hi there"), expected[0])


def test_text_generation_returns_the_prompt_and_its_continuation():
    from tests.decoding.test_generate import ByteTokenizer

    generate = TextGenerationPipeline(ScriptedLM([ord(c) + 3 for c in " world"] + [2]), ByteTokenizer())
    assert generate("hello", max_new_tokens=10) == [{"generated_text": "hello world"}]


def test_summarization_gives_the_extractive_summary():
    extractive = pytest.importorskip("tformer.summarize.extractive")
    text = "The cat sat on the mat. It was a sunny day. The dog barked at the cat. Everyone went home."
    expected = extractive.ExtractiveSummarizer.from_pretrained().summarize(text, 2).text
    assert pipeline("summarization")([text], sentences=2) == [{"summary_text": expected}]
