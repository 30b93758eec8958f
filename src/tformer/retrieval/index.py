"""A passage index on disk: SQLite holds the record (sources with content hashes, passages, their vectors, an
FTS5 table for BM25, and which encoder made the vectors); FAISS searches the vectors.

Every change is one SQLite transaction, so an interrupted ``index`` run leaves the previous index intact; the
FAISS file is a cache of the vectors in SQLite, stamped with the generation it was built from and rebuilt when it
is missing or stale. Exact inner-product search (cosine: the vectors are L2-normalised) by default; HNSW on
request for large collections.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tformer.errors import ModelFolderError
from tformer.retrieval.documents import Document
from tformer.retrieval.fusion import score_fusion
from tformer.retrieval.passages import make_passages

log = logging.getLogger("tformer")

DB_FILE = "index.sqlite"
VECTORS_FILE = "vectors.faiss"
FORMAT = 1
KINDS = ("flat", "hnsw")
MODES = ("dense", "bm25", "hybrid")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY, source TEXT UNIQUE NOT NULL, sha256 TEXT NOT NULL, title TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES sources(id), position INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS passages_by_source ON passages(source_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(text, tokenize='porter unicode61 remove_diacritics 2');
"""


@dataclass
class Hit:
    passage_id: int
    score: float  # cosine (dense), BM25 (bm25, larger = better) or fused score (hybrid)
    text: str
    source: str
    title: str
    start: int  # character span of the passage in its document
    end: int


@dataclass
class UpdateReport:
    added: int = 0  # documents new to the index
    changed: int = 0  # documents whose content changed (their passages replaced)
    unchanged: int = 0
    passages: int = 0  # passages embedded in this run


class Encoder:
    """What the index needs from a sentence encoder: a name with a fingerprint, token offsets and embeddings."""

    def __init__(self, name: str = "minilm") -> None:
        from tformer.models.pipelines import SentenceEncoder
        from tformer.pretrained import resolve_pretrained

        self.name = name
        self.folder = resolve_pretrained(name)
        self.model = SentenceEncoder.from_pretrained(self.folder)
        self.dim = self.model.model.config.d_model
        self.max_tokens = (self.model.max_length or self.model.model.config.max_len) - 2  # [CLS] ... [SEP]
        self.fingerprint = model_fingerprint(self.folder)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.model.tokenizer.encode_with_offsets(text)[1]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        return self.model.encode(list(texts), batch_size).numpy().astype(np.float32)


def model_fingerprint(folder: Path) -> str:
    """A short hash of the checkpoint's config and the first megabyte of each weight file: another model, or
    another version of it, gives another fingerprint."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = folder / name
        if path.is_file():
            with open(path, "rb") as f:
                h.update(name.encode() + f.read(1 << 20))
    return h.hexdigest()[:16]


def content_hash(doc: Document) -> str:
    return hashlib.sha256((doc.title + "\x00" + doc.text).encode("utf-8")).hexdigest()


class PassageIndex:
    """An index folder (``index.sqlite`` + ``vectors.faiss``). Open with ``create`` or ``open``."""

    def __init__(self, folder: Path, db: sqlite3.Connection, meta: dict[str, str]) -> None:
        self.folder, self.db, self.meta = folder, db, meta
        self._faiss = None
        self._encoder: Encoder | None = None

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def create(cls, folder: str | Path, model: str = "minilm", kind: str = "flat", max_tokens: int | None = None,
               overlap: int = 1, encoder: Encoder | None = None) -> PassageIndex:
        """Open ``folder`` for indexing, creating it if needed. An existing index must have been made by the same
        model and settings (else a ``ValueError`` says which differ)."""
        if kind not in KINDS:
            raise ValueError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
        folder = Path(folder)
        if (folder / DB_FILE).is_file():
            index = cls.open(folder)
            index._check_settings(model, kind, max_tokens, overlap)
            index._encoder = encoder
            index.encoder()  # checks the model version
            return index
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise FileExistsError(f"{folder} exists and is not an index folder (no {DB_FILE}); choose another --out")
        encoder = encoder or Encoder(model)
        folder.mkdir(parents=True, exist_ok=True)
        db = _connect(folder / DB_FILE)
        meta = {"format": str(FORMAT), "model": model, "fingerprint": encoder.fingerprint, "dim": str(encoder.dim),
                "kind": kind, "max_tokens": str(max_tokens or encoder.max_tokens), "overlap": str(overlap),
                "generation": "0"}
        with db:
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        index = cls(folder, db, meta)
        index._encoder = encoder
        return index

    @classmethod
    def open(cls, folder: str | Path, any_thread: bool = False) -> PassageIndex:
        """An existing index; ``any_thread``: usable from other threads (the caller keeps calls one at a time)."""
        folder = Path(folder)
        if not (folder / DB_FILE).is_file():
            raise ModelFolderError(f"{folder} is not an index (no {DB_FILE}); make one with `tformer index`")
        db = _connect(folder / DB_FILE, any_thread)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as err:
            raise ModelFolderError(f"{folder / DB_FILE}: not a tformer index ({err})") from None
        if meta.get("format") != str(FORMAT):
            raise ModelFolderError(f"{folder}: index format {meta.get('format')}, this tformer reads {FORMAT}")
        return cls(folder, db, meta)

    def _check_settings(self, model: str, kind: str, max_tokens: int | None, overlap: int) -> None:
        wanted = {"model": model, "kind": kind, "overlap": str(overlap)}
        if max_tokens is not None:
            wanted["max_tokens"] = str(max_tokens)
        differ = [f"{k} {self.meta[k]!r} (asked: {v!r})" for k, v in wanted.items() if self.meta[k] != v]
        if differ:
            raise ValueError(f"{self.folder} was built with {', '.join(differ)}; use the same settings or a new --out")

    def encoder(self) -> Encoder:
        """The sentence encoder the index was built with; another version of it is refused."""
        if self._encoder is None:
            self._encoder = Encoder(self.meta["model"])
        if self._encoder.fingerprint != self.meta["fingerprint"]:
            raise ModelFolderError(
                f"{self.folder} was built with another version of model {self.meta['model']!r} (fingerprint "
                f"{self.meta['fingerprint']}, now {self._encoder.fingerprint}); rebuild it into a new --out")
        return self._encoder

    def close(self) -> None:
        self.db.close()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]

    # ----------------------------------------------------------------------------------------- updating

    def update(self, docs: Sequence[Document], batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> UpdateReport:
        """Add new documents and replace changed ones (by content hash); unchanged ones are not re-embedded.

        All embedding happens first; the changes are then written in one transaction, so an interruption leaves
        the index as it was.
        """
        report = UpdateReport()
        known = {s: (i, h) for i, s, h in self.db.execute("SELECT id, source, sha256 FROM sources")}
        todo = []
        for doc in docs:
            digest = content_hash(doc)
            if doc.source in known and known[doc.source][1] == digest:
                report.unchanged += 1
                continue
            todo.append((doc, digest))
        if not todo:
            return report
        enc = self.encoder()
        max_tokens, overlap = int(self.meta["max_tokens"]), int(self.meta["overlap"])
        cut = [(doc, digest, make_passages(doc.text, enc.token_offsets, max_tokens, overlap)) for doc, digest in todo]
        texts = [p.text for _, _, passages in cut for p in passages]
        vectors = np.concatenate([enc.encode(texts[i : i + 256], batch_size) for i in range(0, len(texts), 256)]
                                 if texts else [np.zeros((0, enc.dim), np.float32)])
        if progress:
            progress(len(texts))
        row = 0
        with self.db:  # one transaction
            for doc, digest, passages in cut:
                if doc.source in known:
                    self._delete_source(known[doc.source][0])
                    self.db.execute("UPDATE sources SET sha256 = ?, title = ? WHERE id = ?",
                                    (digest, doc.title, known[doc.source][0]))
                    source_id, report.changed = known[doc.source][0], report.changed + 1
                else:
                    source_id = self.db.execute("INSERT INTO sources (source, sha256, title) VALUES (?, ?, ?)",
                                                (doc.source, digest, doc.title)).lastrowid
                    report.added += 1
                for position, p in enumerate(passages):
                    pid = self.db.execute(
                        "INSERT INTO passages (source_id, position, start, end, text, vector) VALUES (?,?,?,?,?,?)",
                        (source_id, position, p.start, p.end, p.text, vectors[row].tobytes())).lastrowid
                    self.db.execute("INSERT INTO passages_fts (rowid, text) VALUES (?, ?)", (pid, p.text))
                    row += 1
            self._bump_generation()
        report.passages = len(texts)
        self._faiss = None
        self.save_vectors()
        return report

    def remove(self, sources: Sequence[str]) -> int:
        """Remove documents by source; returns how many were in the index."""
        removed = 0
        with self.db:
            for source in sources:
                found = self.db.execute("SELECT id FROM sources WHERE source = ?", (source,)).fetchone()
                if found:
                    self._delete_source(found[0])
                    self.db.execute("DELETE FROM sources WHERE id = ?", (found[0],))
                    removed += 1
            if removed:
                self._bump_generation()
        if removed:
            self._faiss = None
            self.save_vectors()
        return removed

    def _delete_source(self, source_id: int) -> None:
        ids = [r[0] for r in self.db.execute("SELECT id FROM passages WHERE source_id = ?", (source_id,))]
        self.db.executemany("DELETE FROM passages_fts WHERE rowid = ?", [(i,) for i in ids])
        self.db.execute("DELETE FROM passages WHERE source_id = ?", (source_id,))

    def _bump_generation(self) -> None:
        self.meta["generation"] = str(int(self.meta["generation"]) + 1)
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (self.meta["generation"],))

    # ---------------------------------------------------------------------------------------------- FAISS

    def _build_faiss(self):
        import faiss

        dim = int(self.meta["dim"])
        rows = self.db.execute("SELECT id, vector FROM passages ORDER BY id").fetchall()
        base = faiss.IndexFlatIP(dim) if self.meta["kind"] == "flat" else \
            faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexIDMap(base)
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            index.add_with_ids(vectors, ids)
        return index

    def save_vectors(self) -> None:
        """Write the FAISS file for the current generation (temporary file, then rename)."""
        import faiss

        self._faiss = self._build_faiss()
        tmp = self.folder / f".{VECTORS_FILE}.tmp"
        faiss.write_index(self._faiss, str(tmp))
        (self.folder / f".{VECTORS_FILE}.generation.tmp").write_text(self.meta["generation"])
        os.replace(tmp, self.folder / VECTORS_FILE)
        os.replace(self.folder / f".{VECTORS_FILE}.generation.tmp", self.folder / f"{VECTORS_FILE}.generation")

    def vectors(self):
        """The FAISS index: read from disk when its generation stamp matches SQLite's, else rebuilt."""
        if self._faiss is None:
            import faiss

            stamp = self.folder / f"{VECTORS_FILE}.generation"
            path = self.folder / VECTORS_FILE
            if path.is_file() and stamp.is_file() and stamp.read_text().strip() == self.meta["generation"]:
                self._faiss = faiss.read_index(str(path))
            else:
                self._faiss = self._build_faiss()
        return self._faiss

    # ------------------------------------------------------------------------------------------ searching

    def search(self, query: str, top_k: int = 5, mode: str = "hybrid", candidates: int = 50) -> list[Hit]:
        """The ``top_k`` best passages for ``query``: cosine of embeddings (``dense``), BM25 (``bm25``), or both
        (``hybrid``): the sum of each retriever's scores over its ``candidates`` best, min-max normalised, which
        finds more gold passages on SQuAD than either retriever or reciprocal-rank fusion (docs/qa.md)."""
        if mode not in MODES:
            raise ValueError(f"search mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not query.strip():
            raise ValueError("the query is empty")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if mode == "dense":
            ranked = self.dense(query, top_k)
        elif mode == "bm25":
            ranked = self.bm25(query, top_k)
        else:
            n = max(candidates, top_k)
            ranked = score_fusion([self.dense(query, n), self.bm25(query, n)])[:top_k]
        return self.hits(ranked)

    def dense(self, query: str, k: int, vector: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(passage id, cosine) best first."""
        if vector is None:
            vector = self.encoder().encode([query])
        scores, ids = self.vectors().search(vector.reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def bm25(self, query: str, k: int) -> list[tuple[int, float]]:
        """(passage id, BM25 score) best first, from SQLite's FTS5 (any query word may match)."""
        words = re.findall(r"\w+", query.lower())
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))
        rows = self.db.execute("SELECT rowid, bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ? "
                               "ORDER BY bm25(passages_fts) LIMIT ?", (match, k)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]  # FTS5's bm25() is lower-is-better

    def hits(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
        """Passages with their sources for (passage id, score) pairs, in the given order."""
        out = []
        for pid, score in ranked:
            row = self.db.execute(
                "SELECT p.text, s.source, s.title, p.start, p.end FROM passages p JOIN sources s ON s.id = p.source_id"
                " WHERE p.id = ?", (pid,)).fetchone()
            if row:
                out.append(Hit(pid, score, *row))
        return out

    def describe(self) -> dict:
        sources = self.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
        return {**self.meta, "sources": sources, "passages": len(self)}


def _connect(path: Path, any_thread: bool = False) -> sqlite3.Connection:
    try:
        # the default rollback journal: a transaction is all or nothing, even if the process is killed
        db = sqlite3.connect(str(path), check_same_thread=not any_thread)
        db.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as err:
        raise ModelFolderError(f"{path}: cannot open the index database ({err})") from None
    return db
