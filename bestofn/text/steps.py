"""Step splitting and step marking, exactly as Med-PRM's published sampler does it.

The PRM input ("marked solution"): newlines become spaces; the text is cut at each `Step N:`
(optionally preceded by `## `); each step ends with the step tag ' ки'; text before Step 1 is
kept unmarked; a text with no `Step N:` is one step. Quirks of the reference are kept on
purpose (for example `.replace("## ", "")` removes every "## " inside a step, not only the
one before `Step N:`), because the published reward model was trained on that exact format.
"""

from __future__ import annotations

import re

STEP_TAG = " ки"
STEP_PATTERN = r"(?:## )?Step \d+:"

_STEP_RE = re.compile(STEP_PATTERN)
_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def _step_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each step: from one `Step N:` match to the next (or the text's end)."""
    starts = [m.start() for m in _STEP_RE.finditer(text)]
    return list(zip(starts, [*starts[1:], len(text)], strict=True)) if starts else []


def split_steps(text: str) -> list[str]:
    """The steps of `text` (Med-PRM's `extract_steps_from_text`); newlines are kept."""
    spans = _step_spans(text)
    if not spans:
        return [text.strip()] if text.strip() else []
    return [text[a:b].strip().replace("## ", "") for a, b in spans]


def mark_steps(text: str, tag: str = STEP_TAG) -> str:
    """The PRM input (Med-PRM's `prm_process_solution`): one line, each step ending with `tag`."""
    flat = text.replace("\n", " ")
    spans = _step_spans(flat)
    if not spans:
        return flat.strip() + tag if flat.strip() else ""
    steps = [flat[a:b].strip().replace("## ", "") + tag for a, b in spans]
    head = flat[: spans[0][0]].strip()
    return " ".join([head, *steps] if head else steps)


def mark_outcome(text: str, tag: str = STEP_TAG) -> str:
    """The ORM input (Med-PRM's `orm_process_solution`): one line with a single final tag."""
    return text.replace("\n", " ") + tag


def count_markers(marked: str, tag: str = STEP_TAG) -> int:
    """How many step tags a marked solution holds (the number of scored steps)."""
    return marked.count(tag) if tag else 0


def strip_think(text: str) -> str:
    """`text` without its `<think>…</think>` reasoning.

    Closed blocks are removed; a `</think>` with no opening tag drops everything up to and
    including it (reasoning models' outputs start inside the block); a `<think>` that never
    closes means no final answer was produced, so the result is "".
    """
    text = _THINK_BLOCK_RE.sub("", text)
    if _THINK_CLOSE in text:
        text = text.rsplit(_THINK_CLOSE, 1)[1]
    if _THINK_OPEN in text:
        return ""
    return text
