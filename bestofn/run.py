"""`bestofn run`: questions → N samples → marking and answers → PRM scores → selection → report.

Each finished question is appended to `results.jsonl` (fsync'd), so a run that stops for any
reason resumes where it stopped and, with the same config and seeds, ends with the same report.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .datasets import load_questions
from .files import append_line, atomic_write_text, resume_lines
from .records import Item
from .report import write_report


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results (saved as `config.json` in the run folder)."""

    out: str = "runs/default"
    dataset: str = "medqa"
    questions: int = 5
    n: int = 8
    policy: str = "smollm2"
    policy_backend: str = "hf"
    prm: str | None = "smollm2"
    prm_backend: str = "prm-hf"
    use_docs: bool = False
    max_len: int = 4096
    double_bos: bool = True
    seed: int = 0
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 1.0
    max_tokens: int = 384
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.n < 1 or self.questions < 1:
            raise ValueError(f"need n >= 1 and questions >= 1, got n={self.n}, "
                             f"questions={self.questions}")

    def identity(self) -> dict[str, Any]:
        """The fields that change results (not where they are written)."""
        d = asdict(self)
        d.pop("out")
        return d


class ConfigMismatch(RuntimeError):
    pass


def check_run_dir(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    """Refuse to mix results of two configs in one folder unless `overwrite` clears it."""
    path = out / "config.json"
    if path.exists() and not overwrite:
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in cfg.identity().items() if old.get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigMismatch(f"{out} holds a run with another config ({changes}); "
                                 "use another --out or pass --overwrite")
    if overwrite:
        for name in ("results.jsonl", "report.json", "report.md"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cfg.identity(), indent=2) + "\n")


def run(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the pipeline in-process and write the report.

    Returns report.json's content plus this session's `seconds` and `resumed_questions`.
    """
    from policies import SamplingConfig, make_policy

    from .scorers import make_scorer

    out = Path(cfg.out)
    check_run_dir(out, cfg, overwrite)
    results = out / "results.jsonl"
    done = {d["question"]["id"]: Item.from_dict(d) for d in resume_lines(results)}
    questions = load_questions(cfg.dataset, limit=cfg.questions)
    todo = [q for q in questions if q.id not in done]
    t0 = time.perf_counter()
    if todo:
        policy = make_policy(cfg.policy_backend, model=cfg.policy, device=cfg.device)
        scorer = make_scorer(cfg.prm_backend, model=cfg.prm, device=cfg.device,
                             max_len=cfg.max_len, use_docs=cfg.use_docs,
                             double_bos=cfg.double_bos) if cfg.prm else None
        params = SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_tokens, cfg.seed)
        for q in tqdm(todo, desc="questions", unit="q", disable=not progress):
            sols = policy.sample([q], cfg.n, params)[0]
            docs = [d.text for d in q.documents or []] if cfg.use_docs else None
            prm = scorer.score(q, docs, sols) if scorer else None
            item = Item(q, sols, prm=prm)
            append_line(results, item.to_dict())
            done[q.id] = item
    items = [done[q.id] for q in questions]
    report = write_report(out, items, cfg.identity(), seed=cfg.seed)
    return {**report, "resumed_questions": len(questions) - len(todo),
            "seconds": round(time.perf_counter() - t0, 1)}
