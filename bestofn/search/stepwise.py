"""Step-wise generation: a candidate advances one `Step N:` step per request.

A step ends where the next step header begins (`StepFormat.stops`: "Step", where the Med-PRM
format's `Step N:` / `## Step N:` headers begin; a header within a step's first `min_tokens`
tokens, the step's own, is not a stop) or at the end of the answer. vLLM stops on the stop
string with `include_stop_str_in_output=False`, but its `token_ids` hold every token it
generated, the header's included, so a candidate's accepted tokens are exactly what the
engine produced and its final text is the decoding of their concatenation. The next step
continues from `prompt ids + accepted ids` (a `execution.StepRequest`, sent as
`{"prompt_token_ids": ...}`), never from re-templated text, so the engine's prefix cache and
the tokenization stay exact. Seeds: `question_seed(run seed, question id, lineage, step)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bestofn.text.records import Question


@dataclass(frozen=True)
class StepFormat:
    """Where a step ends: the text that starts the next step's header."""

    stops: tuple[str, ...] = ("Step",)
    min_tokens: int = 4
    """A stop string completed within a step's first tokens (its own header) does not end it."""
    max_steps: int = 64
    """A candidate still unfinished after this many steps is ended there."""


MEDPRM_STEPS = StepFormat()


@dataclass
class Candidate:
    """One partial (or finished) solution of a question."""

    question: Question
    lineage: str
    group: int
    ids: list[int] = field(default_factory=list)
    """Generated token ids so far (after the prompt)."""
    text: str = ""
    """`ids` decoded."""
    steps: int = 0
    done: bool = False
    finish_reason: str | None = None
    cut: int | None = None
    """Where the unfinished next step's header begins in `text` (None: finished)."""
    probs: tuple[float, ...] | None = None
    """P(+) of its scored steps (the latest scoring)."""
    scored_text: str | None = None

    @property
    def scoring_text(self) -> str:
        """The text whose steps are scored: without the next step's header fragment."""
        return self.text if self.cut is None else self.text[: self.cut]

    def child(self, lineage: str) -> Candidate:
        return Candidate(self.question, lineage, self.group, list(self.ids), self.text,
                         self.steps, self.done, self.finish_reason, self.cut, self.probs,
                         self.scored_text)


    def accept(self, token_ids: Sequence[int], stop: str | None, finish_reason: str | None,
               tokenizer: Any, max_tokens: int, fmt: StepFormat) -> None:
        """Append one step's tokens (a matched stop string's included); the candidate ends at
        the end of the answer, at `max_tokens` or after `fmt.max_steps` steps."""
        self.ids += token_ids
        self.steps += 1
        self.text = tokenizer.decode(self.ids, skip_special_tokens=True)
        if stop is None or len(self.ids) >= max_tokens or self.steps >= fmt.max_steps:
            self.done, self.cut = True, None
            self.finish_reason = (finish_reason if stop is None else
                                  "length" if len(self.ids) >= max_tokens else "steps")
        else:
            self.cut = header_cut(self.text, stop)


def prompt_ids(tokenizer: Any, preset: Any, q: Question) -> tuple[int, ...]:
    """The policy's chat prompt of a question as token ids (what every step continues)."""
    text = tokenizer.apply_chat_template(preset.messages(q), tokenize=False,
                                         add_generation_prompt=True)
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def header_cut(text: str, stop: str) -> int:
    """Where the next step's header begins in `text`, which ends with the stop string `stop`
    (and perhaps a few characters of the token that completed it): at the last `stop`, or
    at the `## ` before it (the Med-PRM step pattern takes that prefix with the header)."""
    at = text.rfind(stop)
    if at < 0:
        return len(text)
    return at - 3 if text[max(at - 3, 0):at] == "## " else at
