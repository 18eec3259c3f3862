"""Policy presets: prompt, sampling defaults and answer handling of the seed models, as data.

A preset says how to ask a question (system prompt, user template), how to sample (defaults the
command-line flags override), which solutions are valid (step-count bounds, Med-PRM's filter),
and how to read an output (`<think>` stripping before marking, categorical answer labels).
Every backend builds its `Solution`s with `Preset.make_solution`, so there is one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bestofn.config import SamplingConfig
from bestofn.text.prompts import MEDPRM_OPEN_POLICY_SYSTEM, MEDPRM_POLICY_SYSTEM
from bestofn.text.records import Question, Solution

BOXED_INSTRUCTION = "Please reason step-by-step, and put your final answer within \\boxed{}."
"""II-Medical's recommended instruction, appended to the question in the user message."""

ACR_LABELS = ("Usually Appropriate", "May Be Appropriate", "Usually Not Appropriate")
"""ACR appropriateness categories (the GRPO ACR adapters answer with one of them)."""

THINK_ANSWER_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The Assistant first thinks about the reasoning process and then gives the "
    "answer. The reasoning process and the answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think>"
    "<answer> answer here </answer>."
)
"""The usual R1/GRPO `<think>`/`<answer>` instruction."""


@dataclass(frozen=True)
class Preset:
    """How one policy model is prompted, sampled and read.

    `user_template` has `{question}` replaced by `Question.text()` (options included) and
    `{labels}` by the labels, comma-separated (plain replacement: other braces stay, as in
    `\\boxed{}`). `open_system` replaces `system` for questions without options.
    `steps` bounds the step count of a valid solution (`(3, 9)` is Med-PRM's filter); None keeps
    every solution.
    """

    name: str
    system: str | None = None
    open_system: str | None = None
    user_template: str = "{question}"
    sampling: SamplingConfig = SamplingConfig()
    labels: tuple[str, ...] | None = None
    strip_think: bool = False
    steps: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps[0] <= self.steps[1]:
            raise ValueError(f"preset {self.name!r}: step bounds {self.steps} need "
                             "1 <= min <= max")

    def messages(self, question: Question) -> list[dict[str, str]]:
        """The chat conversation that asks `question`."""
        system = self.open_system if self.open_system and not question.options else self.system
        user = (self.user_template.replace("{labels}", ", ".join(self.labels or ()))
                .replace("{question}", question.text()))
        head = [{"role": "system", "content": system}] if system else []
        return [*head, {"role": "user", "content": user}]

    def make_solution(self, text: str, question: Question, **meta: Any) -> Solution:
        """A raw output → Solution: think block stripped (if set), steps marked, answer read.

        `text` keeps the raw output; `steps` and `marked` come from the stripped text.
        """
        return Solution.from_text(text, question.options or None, self.labels,
                                  think=self.strip_think, **meta)


PRESETS: dict[str, Preset] = {
    "medprm": Preset(
        name="medprm", system=MEDPRM_POLICY_SYSTEM, open_system=MEDPRM_OPEN_POLICY_SYSTEM,
        sampling=SamplingConfig(temperature=0.7, top_k=50, top_p=1.0, max_tokens=4096),
        steps=(3, 9)),
    "smollm2": Preset(
        name="smollm2", system=MEDPRM_POLICY_SYSTEM, open_system=MEDPRM_OPEN_POLICY_SYSTEM,
        sampling=SamplingConfig(temperature=0.7, top_k=50, top_p=1.0, max_tokens=384)),
    "ii-medical": Preset(
        name="ii-medical", user_template="{question}\n\n" + BOXED_INSTRUCTION,
        sampling=SamplingConfig(temperature=0.6, top_k=0, top_p=0.9, max_tokens=8192),
        strip_think=True),
    "grpo-acr": Preset(
        name="grpo-acr", system=THINK_ANSWER_SYSTEM,
        user_template="{question}\n\nAnswer with one of: {labels}.",
        sampling=SamplingConfig(temperature=0.7, top_k=0, top_p=1.0, max_tokens=2048),
        labels=ACR_LABELS),
}


def get_preset(preset: str | Preset) -> Preset:
    """A preset by name (or the preset itself); an unknown name lists the known ones."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise KeyError(f"unknown policy preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[preset]
