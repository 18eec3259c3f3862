"""ProcessBench's critic protocol: an LLM reads a solution split into tagged paragraphs and
answers the index of the earliest wrong one in `\\boxed{}` (-1: every paragraph is right).

As ProcessBench's `code/run_eval.py` (QwenLM/ProcessBench, Zheng et al. 2024, Apache-2.0) runs
it, restated here:
- the prompt is one user message (no system message): its template (`CRITIC_TEMPLATE`, the
  text of their `code/templates/critique_template.txt`) filled with the problem and the steps,
  each as `<paragraph_i>` newline, step, newline, `</paragraph_i>`, paragraphs separated by a
  blank line, indices from 0;
- greedy decoding (temperature 0, seed 42), or with voting `n` = 8 samples at temperature 1,
  top-p 0.9 (seed 42);
- the answer is the content of the last `\\boxed{...}` (no nested braces), stripped; greedy:
  that string as an integer (Python's `int`), none when there is no box or it is not one;
  voting: the most frequent answer string among the replies that have a box (the first seen on
  a tie), then as an integer;
- a solution matches when the prediction equals its label; no prediction is a miss.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CRITIC_TEMPLATE = """The following is a math problem and a solution (split into paragraphs, \
enclosed with tags and indexed from 0):

[Math Problem]

{problem}

[Solution]

{tagged_response}

Your task is to review and critique the solution paragraph by paragraph. Once you identify an \
error in a paragraph, return the index of the paragraph where the earliest error occurs. \
Otherwise, return the index of -1 (which typically denotes "not found").

Please put your final answer (i.e., the index) in \\boxed{{}}."""
"""ProcessBench's critique template; placeholders {problem} and {tagged_response}."""
PLACEHOLDERS = ("{problem}", "{tagged_response}")
GREEDY_TEMPERATURE = 0.0
VOTING_TEMPERATURE = 1.0
VOTING_TOP_P = 0.9
SEED = 42
"""Sampling as `run_eval.py` (its Qwen2.5-Math exception, temperature 0.7, top-p 0.8, top-k 20,
is not taken over)."""
_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


@dataclass(frozen=True)
class CriticPrompt:
    """The critic's user template (replaceable: `CriticPrompt.from_file`)."""

    template: str = CRITIC_TEMPLATE

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CriticPrompt:
        """A template from a text file (stripped, as `run_eval.py` reads its own)."""
        text = Path(path).read_text(encoding="utf-8").strip()
        missing = [p for p in PLACEHOLDERS if p not in text]
        if missing:
            raise ValueError(f"{path}: critic template lacks {', '.join(missing)}")
        return cls(text)

    def messages(self, problem: str, steps: Sequence[str]) -> list[dict[str, str]]:
        return [{"role": "user",
                 "content": self.template.format(problem=problem,
                                                 tagged_response=tagged_paragraphs(steps))}]


def tagged_paragraphs(steps: Sequence[str]) -> str:
    return "\n\n".join(f"<paragraph_{i}>\n{s}\n</paragraph_{i}>" for i, s in enumerate(steps))


def boxed_answer(reply: str) -> str | None:
    """The stripped content of the last `\\boxed{...}` without nested braces, or None."""
    found = _BOXED.findall(reply)
    return found[-1].strip() if found else None


def as_index(answer: str | None) -> int | None:
    if answer is None:
        return None
    try:
        return int(answer)
    except ValueError:
        return None


@dataclass(frozen=True)
class CriticVerdict:
    """One solution's replies and the predicted first wrong paragraph (None: unparsable)."""

    replies: tuple[str, ...]
    prediction: int | None

    @property
    def unparsed_replies(self) -> int:
        return sum(as_index(boxed_answer(r)) is None for r in self.replies)


def verdict(replies: Sequence[str]) -> CriticVerdict:
    """One reply: its boxed integer; several: the majority boxed answer, as an integer."""
    if len(replies) == 1:
        return CriticVerdict(tuple(replies), as_index(boxed_answer(replies[0])))
    counts: dict[str, int] = {}
    for r in replies:
        a = boxed_answer(r)
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    top = max(counts, key=lambda a: counts[a]) if counts else None  # first seen on a tie
    return CriticVerdict(tuple(replies), as_index(top))


def critic_verdicts(engine: Any, prompt: CriticPrompt,
                    solutions: Sequence[tuple[str, Sequence[str]]],
                    sampling: Any) -> list[CriticVerdict]:
    """Each (problem, steps) judged by `engine` (`scorers.critic_engines.CriticEngine`), all
    prompts in one call; `sampling` says how many replies and how long."""
    replies = engine.generate([prompt.messages(p, steps) for p, steps in solutions], sampling)
    assert len(replies) == len(solutions), (len(replies), len(solutions))
    return [verdict(r) for r in replies]
