"""Solutions read back from a file, so stored samples can be rescored without a policy.

The file is the project's JSONL (one `Item` per line) or Med-PRM's published JSON list; its
solutions are returned as stored (text, marking and answers are not recomputed), keyed by
question id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bestofn.config import SamplingConfig
from bestofn.text.files import read_items
from bestofn.text.records import Question, Solution

from .base import check_round


class MissingQuestion(KeyError):
    """A question the replay file has no solutions for (a server answers 404 naming the
    messages, which carry the question)."""

    http_status, http_param = 404, "messages"

    def __str__(self) -> str:
        return str(self.args[0])


class ReplayPolicy:
    """The first N stored solutions of each question (fewer when the file holds fewer:
    Med-PRM's files keep only the valid ones); a round starting at k gets stored solutions
    k..k+N-1. The sampling parameters are ignored."""

    def __init__(self, model: str, *, preset: object = None, device: object = None) -> None:
        """`model` is the solutions file; `preset` and `device` are accepted and ignored, so
        the backend is created like the others."""
        self.path = Path(model)
        self.by_id: dict[str, list[Solution]] = {}
        for item in read_items(self.path):
            if item.question.id in self.by_id:
                raise ValueError(f"{self.path}: question_id {item.question.id!r} appears twice")
            self.by_id[item.question.id] = item.solutions

    def sample(self, questions: Sequence[Question], n: int, params: SamplingConfig,
               start: int = 0) -> list[list[Solution]]:
        check_round(n, start)
        missing = [q.id for q in questions if q.id not in self.by_id]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise MissingQuestion(f"{self.path} has no solutions for question id(s) {shown}"
                           f"{' …' if len(missing) > 5 else ''} ({len(missing)} missing; "
                           f"the file holds {len(self.by_id)} questions)")
        return [[Solution.from_dict(s.to_dict()) for s in self.by_id[q.id][start:start + n]]
                for q in questions]
