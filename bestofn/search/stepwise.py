"""Step-wise generation on vLLM: every live candidate of every question advances one step in
one engine call.

A step ends where the next step header begins (`StepFormat.stops`: "Step", where the Med-PRM
format's `Step N:` / `## Step N:` headers begin; a header within a step's first `min_tokens`
tokens, the step's own, is not a stop) or at the end of the answer. vLLM stops on the stop
string with `include_stop_str_in_output=False`, but its `token_ids` hold every token it
generated, the header's included, so a candidate's accepted tokens are exactly what the
engine produced and its final text is the decoding of their concatenation. The next step
continues from `prompt ids + accepted ids` (a `{"prompt_token_ids": ...}` prompt), never from
re-templated text, so the engine's prefix cache and the tokenization stay exact.
Seeds: `question_seed(run seed, question id, lineage, step)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.records import Question


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


class StepGenerator:
    """Advances candidates one step on a `VLLMPolicy`'s engine (`policy.llm`)."""

    def __init__(self, policy: Any, fmt: StepFormat = MEDPRM_STEPS) -> None:
        if not hasattr(policy, "llm"):
            raise ValueError("search needs the vllm policy backend (step-wise generation "
                             f"continues from token ids); got {type(policy).__name__}")
        self.policy, self.fmt = policy, fmt
        self.tokenizer = policy.llm.get_tokenizer()
        self._prompts: dict[str, list[int]] = {}

    def prompt_ids(self, q: Question) -> list[int]:
        if q.id not in self._prompts:
            text = self.tokenizer.apply_chat_template(self.policy.preset.messages(q),
                                                      tokenize=False, add_generation_prompt=True)
            self._prompts[q.id] = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._prompts[q.id]

    def params(self, c: Candidate, params: SamplingConfig) -> Any:
        from vllm import SamplingParams

        from policies import question_seed

        return SamplingParams(
            n=1, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            max_tokens=params.max_tokens - len(c.ids),
            seed=question_seed(params.seed, c.question.id, c.lineage, c.steps),
            stop=list(self.fmt.stops), include_stop_str_in_output=False,
            min_tokens=min(self.fmt.min_tokens, params.max_tokens - len(c.ids)))

    def advance(self, cands: Sequence[Candidate], params: SamplingConfig) -> list[int]:
        """Generate the next step of every (unfinished) candidate in one engine call; returns
        the tokens each generated."""
        if not cands:
            return []
        prompts = [{"prompt_token_ids": self.prompt_ids(c.question) + c.ids} for c in cands]
        outs = self.policy.llm.generate(prompts, [self.params(c, params) for c in cands],
                                        use_tqdm=False, lora_request=self.policy.lora_request)
        got = []
        for c, out in zip(cands, outs, strict=True):
            [o] = out.outputs
            new = list(o.token_ids)
            c.ids += new
            c.steps += 1
            c.text = self.tokenizer.decode(c.ids, skip_special_tokens=True)
            stop = o.stop_reason if isinstance(o.stop_reason, str) else None
            if stop is None or len(c.ids) >= params.max_tokens or c.steps >= self.fmt.max_steps:
                c.done, c.cut = True, None
                c.finish_reason = (o.finish_reason if stop is None else
                                   "length" if len(c.ids) >= params.max_tokens else "steps")
            else:
                c.cut = header_cut(c.text, stop)
            got.append(len(new))
        return got


def header_cut(text: str, stop: str) -> int:
    """Where the next step's header begins in `text`, which ends with the stop string `stop`
    (and perhaps a few characters of the token that completed it): at the last `stop`, or
    at the `## ` before it (the Med-PRM step pattern takes that prefix with the header)."""
    at = text.rfind(stop)
    if at < 0:
        return len(text)
    return at - 3 if text[max(at - 3, 0):at] == "## " else at
