"""The engines of a run in this process: the policy's stream, the verifiers, the documents.

`ray_workers.RayWorkers` is the same thing on the Ray actors; `jobs.run_jobs_for` runs jobs on
either.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bestofn.config import RunConfig
from bestofn.text.records import Question, Solution

from ..evaluation.ledger import StageClock
from .scoring import Scored, Verifiers, score_pairs
from .startup import StartupLine, part_labels, start_parts, warm_imports
from .streams import SampleStream, make_stream


class LocalWorkers:
    """A policy (its `SampleStream`), the verifiers and the documents stage in this process;
    the PRM prompt carries a question's documents when `use_docs`."""

    def __init__(self, policy: Any, verifiers: Verifiers, use_docs: bool = False,
                 documents: Any = None) -> None:
        self.policy, self.verifiers, self.use_docs = policy, verifiers, use_docs
        self.documents = documents
        self.stream: SampleStream = make_stream(policy)

    @classmethod
    def for_run(cls, cfg: RunConfig, out: Path, clock: StageClock, progress: bool = False,
                line: StartupLine | None = None) -> LocalWorkers:
        """The run's engines, built at the same time on threads (`startup.start_parts`):
        the policy, the PRM, the ORM and the documents index (opened now rather than on
        the first search, while the engines load)."""
        from bestofn.execution.documents import run_documents
        from bestofn.execution.stages import build_policy, build_run_orm, build_run_prm

        documents = run_documents(cfg.documents.index, cfg.documents.k, out, progress)
        makers = {"policy": lambda: build_policy(cfg), "prm": lambda: build_run_prm(cfg),
                  "orm": lambda: build_run_orm(cfg),
                  "index": lambda: documents.lookup.open() if documents else None}
        labels = part_labels(cfg)
        line = line or StartupLine(list(labels.values()), enabled=False)
        with clock.stage("startup_s"):
            if len(labels) > 1:
                warm_imports(cfg)
            got = start_parts({labels[k]: makers[k] for k in labels}, line)
        built = {k: got.get(label) for k, label in labels.items()}
        return cls(built["policy"], Verifiers(built.get("prm"), built.get("orm")),
                   cfg.verifiers.prm.use_docs, documents)

    def score(self, work: Sequence[tuple[Question, Sequence[Solution]]],
              prm_only: bool = False) -> list[Scored]:
        return score_pairs(self.verifiers, work, self.use_docs, prm_only)

    def policy_info(self) -> tuple[Any, Any, str]:
        """What a search needs of the policy: its tokenizer, preset and name."""
        return search_tokenizer(self.policy), self.policy.preset, self.policy.model_name

    def close(self) -> None:
        self.stream.close()


def search_tokenizer(policy: Any) -> Any:
    """The tokenizer a search continues the policy's token ids with; a policy whose engine
    cannot continue from token ids is refused."""
    if getattr(policy, "backend", None) != "vllm":
        raise ValueError("search needs the vllm policy backend (step-wise generation "
                         f"continues from token ids); got {type(policy).__name__}")
    return policy.llm.get_tokenizer()
