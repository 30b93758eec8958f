"""Extractive summaries: N sentences in document order, redundancy control, features, the shipped scorer."""

import json

import pytest
import torch

from tformer.cli.main import main
from tformer.models.pipelines import SentenceEncoder
from tformer.summarize.extractive import (
    FEATURES,
    SCORER_FILE,
    CosineRows,
    ExtractiveSummarizer,
    SentenceScorer,
    embed_sentences,
    mmr_select,
    sentence_features,
)
from tformer.summarize.sentences import cut_to_fit

from tests.models.bert_helpers import save_tiny_encoder

DOCUMENT = [
    "Transformers process text with attention.",
    "We propose a small summarizer that picks sentences.",
    "The weather was cold in the morning.",
    "We show that the summarizer beats the first sentence.",
    "We propose a small summarizer that picks sentences.",  # a repeat of sentence 1
    "Code and data are public.",
]


class BagOfWords:
    """A stand-in sentence encoder: hashed word counts, unit length. Equal sentences get equal embeddings."""

    def encode(self, texts):
        out = torch.zeros(len(texts), 64)
        for i, text in enumerate(texts):
            for word in text.lower().strip(".").split():
                out[i, sum(map(ord, word)) % 64] += 1
        return torch.nn.functional.normalize(out, dim=-1)


def summarizer(ranking="learned", diversity=0.3):
    scorer = SentenceScorer.from_json() if ranking == "learned" else None
    return ExtractiveSummarizer(BagOfWords(), scorer, ranking, diversity)


@pytest.mark.parametrize("ranking", ["learned", "centrality"])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_sentences_in_document_order(ranking, n):
    summary = summarizer(ranking).summarize_sentences(DOCUMENT, n)
    assert len(summary.sentences) == n
    assert summary.indices == sorted(summary.indices)
    assert summary.sentences == [DOCUMENT[i] for i in summary.indices]
    assert len(summary.scores) == len(DOCUMENT)


@pytest.mark.parametrize("diversity", [0.0, 0.3, 0.9])
def test_a_repeated_sentence_is_never_chosen_twice(diversity):
    summary = summarizer("learned", diversity).summarize_sentences(DOCUMENT, 5)
    assert not {1, 4} <= set(summary.indices)
    assert len(set(summary.sentences)) == len(summary.sentences)


def test_mmr_without_diversity_is_top_k_and_diversity_moves_away_from_the_first_pick():
    relevance = torch.tensor([0.9, 0.8, 0.1, 0.5])
    similarity = torch.eye(4)
    similarity[0, 1] = similarity[1, 0] = 0.9  # 1 says nearly what 0 says
    assert mmr_select(relevance, similarity, 3, diversity=0.0) == [0, 1, 3]
    assert mmr_select(relevance, similarity, 2, diversity=0.5) == [0, 3]
    with pytest.raises(ValueError):
        mmr_select(relevance, similarity, 2, diversity=1.5)


def test_rows_on_demand_choose_as_the_full_matrix():
    embeddings = BagOfWords().encode(DOCUMENT)
    relevance = torch.tensor([0.2, 0.9, 0.1, 0.8, 0.9, 0.3])
    for k in (1, 3, 6):
        assert mmr_select(relevance, CosineRows(embeddings), k) == mmr_select(relevance, embeddings @ embeddings.T, k)


def test_every_sentence_when_n_exceeds_the_document_and_notes_for_short_documents():
    s = summarizer()
    short = ["One sentence here.", "Another one there."]
    summary = s.summarize_sentences(short, 5)
    assert summary.indices == [0, 1] and summary.notes
    single = s.summarize("Only this sentence.", 3)
    assert single.sentences == ["Only this sentence."] and "one sentence" in single.notes[0]
    with pytest.raises(ValueError, match="no sentences"):
        s.summarize("  \n\n ")
    with pytest.raises(ValueError):
        s.summarize_sentences(short, 0)


def test_features_follow_position_and_centrality():
    embeddings = BagOfWords().encode(DOCUMENT)
    f = sentence_features(DOCUMENT, embeddings)
    assert f.shape == (len(DOCUMENT), len(FEATURES))
    col = {name: f[:, i] for i, name in enumerate(FEATURES)}
    assert col["position"].tolist() == pytest.approx([i / 5 for i in range(6)])
    assert col["first"].tolist() == [1, 0, 0, 0, 0, 0] and col["last"].tolist() == [0, 0, 0, 0, 0, 1]
    assert col["similarity_first"][0] == pytest.approx(1.0)
    most_central = int(col["centrality"].argmax())
    assert col["centrality_rank"][most_central] == 1.0
    assert col["propose"][1] == 1.0 and col["propose"][2] == 0.0


def test_scorer_json_round_trip(tmp_path):
    torch.manual_seed(0)
    scorer = SentenceScorer(len(FEATURES), hidden=5)
    scorer.mean.normal_()
    scorer.to_json(tmp_path / "s.json", note="test")
    loaded = SentenceScorer.from_json(tmp_path / "s.json")
    x = torch.randn(7, len(FEATURES))
    assert torch.allclose(scorer(x), loaded(x))
    payload = json.loads((tmp_path / "s.json").read_text())
    payload["features"] = payload["features"][::-1]
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="retrain"):
        SentenceScorer.from_json(tmp_path / "bad.json")


def test_shipped_scorer_loads():
    assert SCORER_FILE.is_file()
    assert SentenceScorer.from_json()(torch.zeros(3, len(FEATURES))).shape == (3,)


def test_cli_prints_n_sentences_of_the_document(tmp_path, capsys):
    encoder = save_tiny_encoder(tmp_path / "encoder")
    (tmp_path / "doc.txt").write_text(" ".join(DOCUMENT) + "\n")
    assert main(["summarize", str(tmp_path / "doc.txt"), "--sentences", "2", "--model", str(encoder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line in DOCUMENT for line in lines)
    assert main(["summarize", str(tmp_path / "doc.txt"), "--json", "--model", str(encoder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sentences"] == [DOCUMENT[i] for i in out["indices"]] and len(out["scores"]) == len(DOCUMENT)
    assert main(["summarize", str(tmp_path / "doc.txt"), "--method", "abstractive",
                 "--chat-model", str(tmp_path / "missing.gguf")]) == 1


def test_a_sentence_longer_than_the_encoders_window_is_embedded_in_pieces(tmp_path):
    encoder = SentenceEncoder.from_pretrained(save_tiny_encoder(tmp_path / "encoder"))  # window: 40 tokens
    long = "The " + " ".join(["movie was good and the plot was fun"] * 12)  # about 100 tokens
    vectors, cut = embed_sentences(encoder, [DOCUMENT[0], long, DOCUMENT[2]])
    assert cut == 1 and len(encoder.tokenizer.encode(long)) > 40
    assert torch.allclose(vectors[[0, 2]], encoder.encode([DOCUMENT[0], DOCUMENT[2]]), atol=1e-6)
    pieces = cut_to_fit(long, lambda t: len(encoder.tokenizer.encode(t)), 40)
    assert len(pieces) > 1 and " ".join(pieces) == long
    expected = torch.nn.functional.normalize(encoder.encode(pieces).sum(0), dim=0)
    assert torch.allclose(vectors[1], expected, atol=1e-5)
    assert not torch.allclose(vectors[1], encoder.encode(long), atol=1e-3)  # not the truncated sentence's
    summary = ExtractiveSummarizer(encoder, SentenceScorer.from_json()).summarize(f"{DOCUMENT[0]} {long}. End.", 3)
    assert long + "." in summary.sentences and any("embedded in pieces" in n for n in summary.notes)


def test_cli_bad_documents_are_one_clear_line(tmp_path, capsys):
    encoder = str(save_tiny_encoder(tmp_path / "encoder"))
    for name, text, message in (("empty.txt", "", "input file is empty"),
                                ("blank.txt", "\n  \n\n", "nothing to summarize")):
        (tmp_path / name).write_text(text)
        assert main(["summarize", str(tmp_path / name), "--model", encoder]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    (tmp_path / "one.txt").write_text("Only this sentence.\n")
    assert main(["summarize", str(tmp_path / "one.txt"), "--sentences", "3", "--model", encoder]) == 0
    out, err = capsys.readouterr()
    assert out == "Only this sentence.\n" and "note: the document has one sentence" in err


@pytest.mark.slow
def test_shipped_scorer_beats_lead_and_centrality_on_a_dev_slice():
    """The promise of docs/summarization.md on the first 60 SciTLDR-A dev abstracts (MiniLM embeddings)."""
    from tformer.data.corpus import data_dir
    from tformer.evaluation.rouge import corpus_rouge

    path = data_dir() / "scitldr-a" / "dev.jsonl"
    if not path.is_file():
        pytest.skip("no ../shared/data/scitldr-a")
    docs = [json.loads(line) for line in path.read_text().splitlines()[:60]]
    learned = ExtractiveSummarizer.from_pretrained("minilm")
    central = ExtractiveSummarizer(learned.encoder, ranking="centrality")
    refs = [d["target"] for d in docs]
    scores = {}
    for name, s in (("learned", learned), ("centrality", central)):
        picks = [s.summarize_sentences(d["source"], 1).text for d in docs]
        scores[name] = corpus_rouge(picks, refs).rouge1
    scores["lead"] = corpus_rouge([d["source"][0] for d in docs], refs).rouge1
    assert scores["learned"] > scores["centrality"] and scores["learned"] > scores["lead"]
