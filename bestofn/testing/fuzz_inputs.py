"""The fuzzed readers (`bestofn.testing.fuzzing.READERS`): a valid input of each kind, and how each
command reads it. Inputs are small: the property is about shapes, not sizes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..text.records import Item, Question, Solution, StepScores
from .fuzzing import Crash, Reader, file_input

OPTIONS = {"A": "aspirin", "B": "heparin", "C": "insulin", "D": "warfarin"}
RUN_IDS = [f"q{i}" for i in range(4)]


def _text(r: random.Random, j: int) -> tuple[str, str]:
    letter = r.choice("ABCD")
    return f"Step 1: finding {j}.\nStep 2: so the answer is ({letter}).", letter


def medprm_record(r: random.Random, i: int) -> dict[str, Any]:
    """A question of Med-PRM's published files, scored (PRM, ORM) or not."""
    scored, orm = r.random() < 0.6, r.random() < 0.3
    sols = []
    for j in range(r.randint(1, 4)):
        text, letter = _text(r, j)
        s: dict[str, Any] = {"solution": text, "prm_processed_solution": text.replace(
            "\n", " ки\n") + " ки", "answer": letter, "score": int(letter == "A")}
        if scored:
            probs = [round(r.random(), 3) for _ in range(2)]
            s.update(PRM_min_score=min(probs), PRM_score=probs[-1], PRM_score_list=probs)
        if orm:
            s["ORM_score"] = round(r.uniform(-3, 3), 3)
        sols.append(s)
    stem = "Which drug?\n\n" + "\n".join(f"({k}) {v}" for k, v in OPTIONS.items())
    return {"question_id": f"q{i}", "data_source": "medqa", "question": stem,
            "correct_answer": r.choice("ABCD"), "related_docs": ["a passage"], "solutions": sols}


def item(r: random.Random, qid: str, n: int | None = None) -> Item:
    """An item of the project's JSONL (a run's results line), scored or not."""
    q = Question(id=qid, stem="Which drug?", options=dict(OPTIONS), answer=r.choice("ABCD"),
                 source="medqa", documents=None if r.random() < 0.5 else [])
    sols = [Solution.from_text(_text(r, j)[0], OPTIONS, tokens=5)
            for j in range(n or r.randint(1, 4))]
    prm = [StepScores((round(r.random(), 3),)) if r.random() < 0.8
           else StepScores.unscored("too long") for _ in sols] if r.random() < 0.7 else None
    orm = [round(r.random(), 3) for _ in sols] if r.random() < 0.3 else None
    return Item(q, sols, prm=prm, orm=orm)


def question_line(r: random.Random, i: int) -> dict[str, Any]:
    if r.random() < 0.3:
        return Question(id=f"q{i}", stem="Which?", options=dict(OPTIONS), answer="B").to_dict()
    return {"question": "Which drug?", "options": dict(OPTIONS), "answer_idx": r.choice("ABCD"),
            "answer": "aspirin", "realidx": i}


def mirage(r: random.Random) -> dict[str, Any]:
    return {name: {f"{name}-{i}": {"question": "Which?", "options": dict(OPTIONS),
                                   "answer": r.choice("ABCD")} for i in range(r.randint(1, 3))}
            for name in r.sample(["medqa", "pubmedqa", "mmlu"], r.randint(1, 3))}


def corpus_line(r: random.Random, i: int) -> dict[str, Any]:
    return {"id": str(i) if r.random() < 0.8 else i, "title": "Anemia",
            "text": f"Passage {i} about anemia and its treatment."}


def pair_line(r: random.Random, i: int) -> dict[str, Any]:
    """A preference pair (`bestofn prefs`): a prompt and two responses, as text or messages."""
    if r.random() < 0.5:
        return {"id": f"p{i}", "prompt": "Which drug?", "chosen": "Heparin.",
                "rejected": "Aspirin."}
    user = {"role": "user", "content": "Which drug?"}
    return {"id": f"p{i}", "chosen": [user, {"role": "assistant", "content": "Heparin."}],
            "rejected": [user, {"role": "assistant", "content": "Aspirin."}]}


def manifest(r: random.Random) -> dict[str, Any]:
    from retrieval.corpus import CorpusSpec
    from retrieval.faiss_index import IndexConfig

    return {"embedder": {"name": "minilm", "dim": 384, "max_seq_length": 256},
            "corpus": {"path": "corpus.jsonl", "sha256": "ab" * 32,
                       "spec": CorpusSpec().to_dict(), "stats": {"records": 3}},
            "index": {"kind": "flat", "factory": "Flat", "params": IndexConfig().to_dict(),
                      "ntotal": 3, "file": "index.faiss"},
            "store": {"format": 1, "files": ["passages.jsonl"], "passages": 3},
            "build": {"seconds": 1.0}, "format": 1}


def run_config() -> Any:
    from ..config import RunConfig

    return RunConfig.from_settings(out="run", policy_backend="replay", policy="solutions.jsonl",
                                   prm="prm", min_steps=0, max_steps=0, temperature=0.7,
                                   top_k=50, top_p=1.0, max_tokens=64, adaptive="esc:w=2", n=8)


def round_lines(r: random.Random) -> list[dict[str, Any]]:
    """The samples of a streamed adaptive run in progress: one per line, in any order."""
    out, drawn = [], dict.fromkeys(RUN_IDS, 0)
    for _ in range(r.randint(1, 6)):
        qid = r.choice(RUN_IDS)
        it = item(r, qid, 1)
        prm = it.prm or [StepScores((0.5,))]
        out.append({"question": qid, "start": drawn[qid],
                    "solutions": [s.to_dict() for s in it.solutions],
                    "prm": [p.to_dict() for p in prm], "orm": None, "prm_tokens": 0})
        drawn[qid] += 1
    return out


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run_dir(folder: Path) -> Path:
    return folder / "run"


# --- how each command reads --------------------------------------------------------------

def read_solutions(path: Path) -> None:
    """`bestofn evaluate` (and score, report): read, then evaluate."""
    from ..evaluation.evaluate import evaluate
    from ..text.files import read_items

    evaluate(read_items(path))


def read_questions(path: Path) -> None:
    from ..text.datasets import load_questions

    for q in load_questions(str(path)):
        q.text()


def read_corpus(path: Path) -> None:
    from retrieval.corpus import CorpusSpec, prepare_passages

    prepare_passages(path, CorpusSpec())


def read_pairs(path: Path) -> None:
    from ..evaluation.prefs import read_pairs as read

    read(path)


def read_manifest(path: Path) -> None:
    from retrieval.faiss_retriever import index_fingerprint
    from retrieval.manifest import Manifest

    m = Manifest.load(path.parent)
    m.check(path.parent, "minilm", m.corpus["sha256"], m.corpus["spec"])
    index_fingerprint(m)


def read_run_config(path: Path) -> None:
    from ..run import check_run_dir

    check_run_dir(path.parent, run_config(), overwrite=False)


def read_results(path: Path) -> None:
    """A resumed run: the results so far (a cut last line is dropped), then the report's
    evaluation. A refused file is left as it was."""
    from ..evaluation.evaluate import evaluate
    from ..execution.driver import own_lines
    from ..text.files import resume_lines

    questions = [Question(id=q, stem="Which?", options=dict(OPTIONS)) for q in RUN_IDS]
    before = path.read_bytes()
    try:
        lines = resume_lines(path, own_lines(path, questions))
    except Exception:
        if path.read_bytes() != before:
            raise Crash(f"{path}: changed by a refused resume") from None
        raise
    items = [Item.from_dict(d) for d in lines]
    if items:
        evaluate(items)
    again = path.read_bytes()
    if resume_lines(path) != lines or again and not again.endswith(b"\n") \
            or not before.startswith(again):
        raise Crash(f"{path}: the resumed file is not the kept lines of the file before")


def read_rounds(path: Path) -> None:
    """A resumed adaptive run reading its samples (`adaptive.stream.adaptive_jobs`), and the
    questions its rule settles on them."""
    from ..evaluation.evaluate import evaluate
    from ..jobs.adaptive import adaptive_jobs

    todo = [Question(id=q, stem="Which?", options=dict(OPTIONS), answer="A") for q in RUN_IDS]
    jobs = adaptive_jobs(run_config(), todo, path.parent, None, set(RUN_IDS))
    settled = [j.item() for j in jobs if j.stop_at is not None]
    if settled:
        evaluate(settled)


def _files(name: str, suffix: str, lines: bool, make_value: Any, read: Any) -> Reader:
    def make(r: random.Random, folder: Path) -> Path:
        return _write(folder / f"input{suffix}", file_input(r, make_value(r), lines))

    return Reader(name, make, read)


def _in_run(name: str, file: str, lines: bool, make_value: Any, read: Any) -> Reader:
    def make(r: random.Random, folder: Path) -> Path:
        return _write(_run_dir(folder) / file, file_input(r, make_value(r), lines))

    return Reader(name, make, read)


def _run_config_value(r: random.Random) -> dict[str, Any]:
    return run_config().identity()


def _manifest_reader() -> Reader:
    def make(r: random.Random, folder: Path) -> Path:
        return _write(folder / "index" / "manifest.json", file_input(r, manifest(r), False))

    return Reader("index manifest", make, read_manifest)


READERS: dict[str, Reader] = {r.name: r for r in [
    _files("Med-PRM JSON", ".json", False,
           lambda r: [medprm_record(r, i) for i in range(r.randint(1, 3))], read_solutions),
    _files("project JSONL", ".jsonl", True,
           lambda r: [item(r, f"q{i}").to_dict() if r.random() < 0.7 else medprm_record(r, i)
                      for i in range(r.randint(1, 3))], read_solutions),
    _files("question JSONL", ".jsonl", True,
           lambda r: [question_line(r, i) for i in range(r.randint(1, 3))], read_questions),
    _files("MIRAGE JSON", ".json", False, mirage, read_questions),
    _files("corpus JSONL", ".jsonl", True,
           lambda r: [corpus_line(r, i) for i in range(r.randint(1, 4))], read_corpus),
    _files("preference pairs", ".jsonl", True,
           lambda r: [pair_line(r, i) for i in range(r.randint(1, 3))], read_pairs),
    _manifest_reader(),
    _in_run("run config.json", "config.json", False, _run_config_value, read_run_config),
    _in_run("run results.jsonl", "results.jsonl", True,
            lambda r: [item(r, q).to_dict() for q in r.sample(RUN_IDS, r.randint(1, 4))],
            read_results),
    _in_run("run rounds.jsonl", "rounds.jsonl", True, round_lines, read_rounds),
]}
