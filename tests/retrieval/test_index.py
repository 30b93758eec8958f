"""The passage index: finds what it holds (dense, BM25, hybrid; exact and HNSW), updates only changed documents,
leaves nothing half-written when a run fails, rebuilds a stale vector file, and refuses another model version."""

import pytest

from tformer.errors import ModelFolderError
from tformer.retrieval.documents import Document
from tformer.retrieval.fusion import reciprocal_rank_fusion
from tformer.retrieval.index import VECTORS_FILE, PassageIndex

from tests.retrieval.fake import WordsEncoder

DOCS = [
    Document("paris.txt", "Paris is the capital of France. The Louvre museum is in Paris."),
    Document("rome.txt", "Rome is the capital of Italy. The Colosseum stands in Rome."),
    Document("tokyo.txt", "Tokyo is the capital of Japan. It hosted the Olympic games."),
    Document("notes.md", "Bread needs flour, water, salt and yeast. Knead it for ten minutes."),
]


def build(folder, kind="flat", encoder=None, docs=DOCS):
    index = PassageIndex.create(folder, "fake", kind, encoder=encoder or WordsEncoder())
    index.update(docs)
    return index


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_each_mode_finds_the_document_that_holds_the_words(tmp_path, mode, kind):
    index = build(tmp_path / "i", kind)
    assert index.search("Colosseum stands", 2, mode)[0].source == "rome.txt"
    assert index.search("flour and yeast", 1, mode)[0].source == "notes.md"
    hit = index.search("Olympic games", 1, mode)[0]
    assert DOCS[2].text[hit.start:hit.end] == hit.text


def test_reopened_index_gives_the_same_results(tmp_path):
    index = build(tmp_path / "i")
    before = [(h.passage_id, h.score) for h in index.search("capital of Japan", 3, "dense")]
    index.close()
    again = PassageIndex.open(tmp_path / "i")
    again._encoder = WordsEncoder()
    after = [(h.passage_id, h.score) for h in again.search("capital of Japan", 3, "dense")]
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before])


def test_update_embeds_only_new_and_changed_documents(tmp_path):
    encoder = WordsEncoder()
    index = build(tmp_path / "i", encoder=encoder)
    first = encoder.encoded
    changed = Document("rome.txt", "Rome is the capital of Italy. Trevi fountain coins are collected.")
    report = index.update([*DOCS[:1], changed, Document("new.txt", "Lisbon has trams.")])
    assert (report.added, report.changed, report.unchanged) == (1, 1, 1)
    assert encoder.encoded - first == report.passages < first  # only rome and new.txt were embedded
    assert index.search("Colosseum", 1, "bm25") == []  # the old text is gone
    assert index.search("Trevi fountain", 1, "hybrid")[0].source == "rome.txt"
    assert index.describe()["sources"] == 5


def test_a_failure_during_an_update_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    index = build(tmp_path / "i")
    before = (len(index), index.meta["generation"])

    def boom(self, source_id):
        raise RuntimeError("killed")

    monkeypatch.setattr(PassageIndex, "_delete_source", boom)
    docs = [Document("zurich.txt", "Zurich has a lake."), Document("rome.txt", "Rome changed.")]
    with pytest.raises(RuntimeError):
        index.update(docs)  # zurich is inserted first, then rome's replacement fails
    monkeypatch.undo()
    reopened = PassageIndex.open(tmp_path / "i")
    assert (len(reopened), reopened.meta["generation"]) == before
    assert reopened.search("Zurich lake", 1, "bm25") == []


def test_stale_or_missing_vector_file_is_rebuilt_from_sqlite(tmp_path):
    build(tmp_path / "i").close()
    (tmp_path / "i" / VECTORS_FILE).unlink()
    index = PassageIndex.open(tmp_path / "i")
    index._encoder = WordsEncoder()
    assert index.search("Louvre museum", 1, "dense")[0].source == "paris.txt"


def test_another_model_version_is_refused(tmp_path):
    build(tmp_path / "i").close()
    with pytest.raises(ModelFolderError, match="another version"):
        PassageIndex.create(tmp_path / "i", "fake", encoder=WordsEncoder(fingerprint="fake-v2"))
    with pytest.raises(ValueError, match="kind 'flat'"):
        PassageIndex.create(tmp_path / "i", "fake", "hnsw", encoder=WordsEncoder())


def test_bad_queries_and_folders(tmp_path):
    index = build(tmp_path / "i")
    with pytest.raises(ValueError, match="empty"):
        index.search("  ")
    assert index.search("!!!", 3, "bm25") == []
    with pytest.raises(ModelFolderError, match="not an index"):
        PassageIndex.open(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError):
        PassageIndex.create(tmp_path / "other", "fake", encoder=WordsEncoder())


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion([[(1, 0.9), (2, 0.8), (3, 0.1)], [(2, 9.0), (3, 5.0)]])
    assert [i for i, _ in fused] == [2, 3, 1]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_score_fusion_adds_min_max_normalised_scores():
    from tformer.retrieval.fusion import score_fusion

    fused = dict(score_fusion([[(1, 0.9), (2, 0.5), (3, 0.1)], [(3, 30.0), (2, 20.0), (4, 10.0)]]))
    assert fused == pytest.approx({1: 1.0, 2: 0.5 + 0.5, 3: 0.0 + 1.0, 4: 0.0})
