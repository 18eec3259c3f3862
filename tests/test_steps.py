"""Step splitting and marking: edge cases, and equality with Med-PRM's reference code."""

from __future__ import annotations

import random
import re

import pytest

from bestofn.text.steps import (
    STEP_PATTERN,
    STEP_TAG,
    count_markers,
    mark_outcome,
    mark_steps,
    split_steps,
    strip_think,
)

# ---- verbatim copy of Med-PRM's published sampler (the reference) --------------------------


def extract_steps_from_text(txt):
    mts = list(re.finditer(STEP_PATTERN, txt))
    if not mts:
        return [txt.strip()] if txt.strip() else []
    steps = []
    for i, m in enumerate(mts):
        start = m.start()
        end = mts[i + 1].start() if i + 1 < len(mts) else len(txt)
        steps.append(txt[start:end].strip().replace("## ", ""))
    return steps


def prm_process_solution(txt):
    no_nl = txt.replace("\n", " ")
    mts = list(re.finditer(STEP_PATTERN, no_nl))
    if not mts:
        return no_nl.strip() + " ки" if no_nl.strip() else ""
    head = no_nl[:mts[0].start()].strip()
    steps = []
    for i, m in enumerate(mts):
        start = m.start()
        end = mts[i + 1].start() if i + 1 < len(mts) else len(no_nl)
        steps.append(no_nl[start:end].strip().replace("## ", "") + " ки")
    if head:
        steps.insert(0, head)
    return " ".join(steps)


def orm_process_solution(txt):
    return txt.replace("\n", " ") + " ки"


# ---- edge cases ----------------------------------------------------------------------------


def test_pattern_and_tag() -> None:
    assert STEP_PATTERN == r"(?:## )?Step \d+:"
    assert STEP_TAG == " ки"


def test_no_step_is_one_marked_step() -> None:
    assert mark_steps("The answer is (C).") == "The answer is (C). ки"
    assert split_steps("  The answer is (C).\n") == ["The answer is (C)."]
    assert count_markers(mark_steps("plain text")) == 1


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \n \t"])
def test_empty_text(text: str) -> None:
    assert mark_steps(text) == ""
    assert split_steps(text) == []
    assert count_markers(mark_steps(text)) == 0


def test_multiple_steps_and_head_kept_unmarked() -> None:
    text = "Let me think.\nStep 1: Look.\nStep 2: Decide.\nthe answer is (B)"
    assert mark_steps(text) == "Let me think. Step 1: Look. ки Step 2: Decide. the answer is (B) ки"
    assert split_steps(text) == ["Step 1: Look.", "Step 2: Decide.\nthe answer is (B)"]
    assert count_markers(mark_steps(text)) == 2


def test_hash_prefix_dropped_everywhere_in_a_step() -> None:
    text = "## Step 1: a ## b\n## Step 2: c"
    assert mark_steps(text) == "Step 1: a b ки Step 2: c ки"
    assert split_steps(text) == ["Step 1: a b", "Step 2: c"]


def test_newlines_become_spaces() -> None:
    assert mark_steps("Step 1: x\ny\n\nz") == "Step 1: x y  z ки"
    assert mark_outcome("a\nb") == "a b ки"


def test_step_ten_and_custom_tag() -> None:
    text = "Step 9: nine Step 10: ten"
    assert split_steps(text) == ["Step 9: nine", "Step 10: ten"]
    assert mark_steps(text, tag=" <s>") == "Step 9: nine <s> Step 10: ten <s>"
    assert count_markers("Step 9: nine <s> Step 10: ten <s>", tag=" <s>") == 2
    assert mark_outcome(text, tag="!") == text + "!"


def test_lowercase_step_is_not_a_step() -> None:
    assert mark_steps("step 1: a step 2: b") == "step 1: a step 2: b ки"


@pytest.mark.parametrize(("text", "want"), [
    ("<think>hmm</think>The answer is C", "The answer is C"),
    ("a<think>x</think>b<think>y</think>c", "abc"),
    ("reasoning without opening</think>\nFinal: B", "\nFinal: B"),
    ("<think>never closed, no answer", ""),
    ("no think at all", "no think at all"),
    ("x</think>y<think>z</think>w", "yw"),
])
def test_strip_think(text: str, want: str) -> None:
    assert strip_think(text) == want


# ---- equality with the reference on random texts -------------------------------------------

_PIECES = ["Step 1:", "Step 2:", "Step 10:", "Step 3 :", "step 4:", "## ", "##", "#", "\n",
           "\n\n", " ", "  ", "word", "Step", "the answer is (C).", "ки", " ки", "é", "→",
           "患者", "🙂", "\t", "Step12:", ":", "Step 7:## ", "## Step 5:"]


def _random_text(rng: random.Random) -> str:
    pieces = [rng.choice(_PIECES) if rng.random() < 0.8 else str(rng.randint(0, 99))
              for _ in range(rng.randint(0, 30))]
    return "".join(p + (" " if rng.random() < 0.5 else "") for p in pieces)


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 1234])
def test_matches_reference_on_random_texts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        text = _random_text(rng)
        assert mark_steps(text) == prm_process_solution(text), text
        assert split_steps(text) == extract_steps_from_text(text), text
        assert len(split_steps(text)) == len(extract_steps_from_text(text))
        assert mark_outcome(text) == orm_process_solution(text)
