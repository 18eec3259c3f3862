"""Answer extraction: one test per rule, and agreement with ThoughtSource's correctness labels."""

from __future__ import annotations

import gzip
import json
import string
from pathlib import Path

import pytest

from bestofn.text.answers import extract_answer

OPTS = {"A": "Renal papillary necrosis", "B": "Allergic interstitial nephritis",
        "C": "Cholesterol embolization", "D": "Eosinophilic granulomatosis with polyangiitis"}
LETTERS = ["A", "B", "C", "D"]
LABELS = ["Usually Appropriate", "May Be Appropriate", "Usually Not Appropriate"]
DATA = Path(__file__).parent / "data" / "thoughtsource_medqa_cots.json.gz"


# ---- multiple choice -----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    (r"so \boxed{C}", "C"),
    (r"so \boxed{(B)}", "B"),
    (r"so $\boxed{\text{D}}$", "D"),
    (r"\boxed{C. Cholesterol embolization}", "C"),
    (r"\boxed{Cholesterol embolization}", "C"),
])
def test_boxed(text: str, want: str) -> None:
    assert extract_answer(text, OPTS) == want


@pytest.mark.parametrize(("text", "want"), [
    ("Step 3: ... the answer is (C).", "C"),
    ("The answer is B.", "B"),
    ("so the final answer is D", "D"),
    ("Answer: A", "A"),
    ("Answer: (B) Allergic interstitial nephritis", "B"),
    ("The correct answer is option C.", "C"),
    ("The best choice here is option (D).", "D"),
    ("THE ANSWER IS (c)", "C"),
    ("the answer is (c) because", "C"),
    ("**Answer:** **B**", "B"),
    ("The answer is: C - cholesterol emboli", "C"),
])
def test_answer_phrases(text: str, want: str) -> None:
    assert extract_answer(text, OPTS) == want


@pytest.mark.parametrize(("text", "want"), [
    ("the answer is most likely (C)", "C"),
    ("the answer is probably B", "B"),
    ("Therefore, among A through D, the answer is most likely A) Renal papillary necrosis.", "A"),
    ("Therefore, among A through D, the answer is most likely A) …", "A"),
    ("The answer is likely to be (D).", "D"),
    ("The answer would most likely be C.", "C"),
    ("The answer, therefore, is probably (B).", "B"),
    ("The answer is, most likely, (C).", "C"),
    ("The answer is in all likelihood D.", "D"),
    ("The answer seems to be B.", "B"),
    ("The answer could be (B). On reflection the answer must be (D).", "D"),
    ("Answer: most likely C", "C"),
    ("The correct answer is most likely option C.", "C"),
    ("This is most likely option B.", "B"),
    ("So I would choose (C).", "C"),
    ("I'd go with B.", "B"),
    ("(C) is most likely the correct answer.", "C"),
    ("So, B is the best answer.", "B"),
    ("Step 2: fits.\nC is the answer.", "C"),
    ("most likely C) Cholesterol embolization.", "C"),
    ("Probably (B).", "B"),
])
def test_hedged_answers(text: str, want: str) -> None:
    assert extract_answer(text, OPTS) == want


@pytest.mark.parametrize("text", [
    "the answer is most likely A and D.",
    "The answer is probably A and/or D.",
    "The answer may be A as well as D.",
    "The answer could be B, C, or D.",
    "The answer is most likely either A or C.",
    "The answer is probably both A and D.",
    "the answer is most likely none of the above.",
    "the answer is most likely all of the above",
    "The answer is probably not B.",
    "The answer is unlikely to be C.",
    "The answer is less likely to be C.",
    "The answer cannot be A.",
    "The answer is likely a viral infection.",
    "Vitamin C is the answer.",
    "Hepatitis B is most likely the correct answer.",
    "A or C is the answer.",
    "I would choose between A and B.",
    "We can't select C.",
])
def test_hedge_traps_give_none(text: str) -> None:
    assert extract_answer(text, OPTS) is None


def test_last_line_option_text_after_reasoning() -> None:
    text = "Step 1: spindle-shaped vacuoles.\nStep 2: so emboli.\nCholesterol embolization"
    assert extract_answer(text, OPTS) == "C"
    assert extract_answer("Step 1: spindle vacuoles.\nCholesterol crystals", OPTS) is None


@pytest.mark.parametrize("text", [
    "The answer is a viral infection.",
    "Answer: a 45-year-old man with emboli",
    "The answer is not clear.",
    "The answer is i.e. unknown",
    "The answer is A and C.",
    "The answer is (A) or (C).",
    "The answer is C, D.",
])
def test_phrase_traps_give_none(text: str) -> None:
    assert extract_answer(text, OPTS) is None


def test_letters_outside_options_are_never_answers() -> None:
    assert extract_answer("The answer is (E).", OPTS) is None
    assert extract_answer(r"\boxed{F}", LETTERS) is None
    assert extract_answer("the answer is (E)", LETTERS) is None
    assert extract_answer("E.", LETTERS) is None
    assert extract_answer("The answer is (E). I mean the answer is (B).", LETTERS) == "B"


def test_boxed_beats_phrase_and_last_match_wins() -> None:
    assert extract_answer(r"\boxed{A} ... the answer is (B)", OPTS) == "A"
    assert extract_answer("the answer is (A). On reflection the answer is (D).", OPTS) == "D"
    assert extract_answer(r"\boxed{A} then \boxed{C}", OPTS) == "C"
    assert extract_answer("the answer is (B)\nC) Cholesterol embolization", OPTS) == "B"


def test_answer_tag_is_the_only_region() -> None:
    text = "the answer is (A) <answer>B</answer> the answer is (D)"
    assert extract_answer(text, OPTS) == "B"
    assert extract_answer("<answer>A</answer> <answer>(C)</answer>", OPTS) == "C"
    assert extract_answer("the answer is (A) <answer>unsure</answer>", OPTS) is None


def test_think_is_ignored() -> None:
    assert extract_answer("<think>the answer is (A)</think>The answer is (B).", OPTS) == "B"
    assert extract_answer("the answer is (A)... </think> \\boxed{C}", OPTS) == "C"
    assert extract_answer("<think>the answer is (A) and then I ran out", OPTS) is None


@pytest.mark.parametrize(("text", "want"), [
    ("C) Cholesterol embolization.", "C"),
    ("(C) Cholesterol embolization", "C"),
    (" C. Cholesterol embolization is the most likely cause.", "C"),
    ("C: cholesterol embolisation.", "C"),
    (" C.", "C"),
    ("C", "C"),
    ("(B)", "B"),
    (" D.\n\nBecause of the eosinophils.", "D"),
    ("Option B.", "B"),
    ("cholesterol embolization.", "C"),
    ("  Renal papillary necrosis  ", "A"),
])
def test_lone_letter_and_option_text(text: str, want: str) -> None:
    assert extract_answer(text, OPTS) == want


@pytest.mark.parametrize("text", [
    "C and D.",
    " B or C.",
    " A, B, C, and D.",
    "either A) Renal papillary necrosis or B) Allergic interstitial nephritis.",
    "C) Renal papillary necrosis.",  # letter and option text disagree
    "A) Renal papillary necrosis - unlikely.\nB) Allergic interstitial nephritis - possible.\n"
    "We need more information.",
    "none of the above.",
    "",
])
def test_lone_letter_ambiguous_or_absent_is_none(text: str) -> None:
    assert extract_answer(text, OPTS) is None


def test_option_mention_needs_a_conclusion() -> None:
    assert extract_answer("Therefore option C is correct.", OPTS) == "C"
    assert extract_answer("So, Option (B) is the best answer here.", OPTS) == "B"
    assert extract_answer("Option C is not correct.", OPTS) is None
    assert extract_answer("Option C fits the biopsy.", OPTS) is None
    assert extract_answer("Option A or option C is correct.", OPTS) is None


def test_options_as_text_list_and_letter_list() -> None:
    assert extract_answer("C) Cholesterol embolization", list(OPTS.values())) == "C"
    assert extract_answer("the answer is (b)", LETTERS) == "B"


def test_unknown_options_strict_letters_else_open() -> None:
    assert extract_answer("the answer is (G).", None) == "G"
    assert extract_answer(r"\boxed{H}", None) == "H"
    assert extract_answer("the answer is a viral infection", None) is None
    assert extract_answer("Final Answer: Pneumonia", None) == "Pneumonia"


# ---- open questions ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ("Step 4: ...\n## Final Diagnosis: Takayasu arteritis", "Takayasu arteritis"),
    ("Final Diagnosis: Sarcoidosis.\nMore notes.", "Sarcoidosis"),
    ("**Final Diagnosis:**\nAcute pancreatitis", "Acute pancreatitis"),
    ("Final Answer: Wilson disease", "Wilson disease"),
    ("The most likely diagnosis is acute intermittent porphyria. It fits.",
     "acute intermittent porphyria"),
    (r"so \boxed{Kawasaki disease}", "Kawasaki disease"),
    ("<think>maybe lupus</think><answer> Lupus nephritis </answer>", "Lupus nephritis"),
    ("I am not sure.", None),
])
def test_open_questions(text: str, want: str | None) -> None:
    assert extract_answer(text, {}) == want
    assert extract_answer(text, []) == want


def test_open_final_diagnosis_beats_diagnosis_is_and_last_wins() -> None:
    text = "Final Diagnosis: Gout\nThe diagnosis is pseudogout.\nFinal Diagnosis: Septic arthritis"
    assert extract_answer(text, {}) == "Septic arthritis"


# ---- categorical labels --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ("<think>Usually Appropriate?</think><answer>Usually Not Appropriate</answer>",
     "Usually Not Appropriate"),
    ("<answer>usually   appropriate</answer>", "Usually Appropriate"),
    ("It is not Usually Appropriate here. The answer is: May Be Appropriate.",
     "May Be Appropriate"),
    ("Answer: usually not appropriate", "Usually Not Appropriate"),
    ("First I thought May Be Appropriate, but overall Usually Appropriate.",
     "Usually Appropriate"),
    ("No category fits.", None),
])
def test_labels(text: str, want: str | None) -> None:
    assert extract_answer(text, labels=LABELS) == want


def test_labels_nested_prefer_longest_at_same_place() -> None:
    assert extract_answer("Not Appropriate", labels=["Appropriate", "Not Appropriate"]) == (
        "Not Appropriate")
    assert extract_answer("Not Appropriate, rather Appropriate",
                          labels=["Appropriate", "Not Appropriate"]) == "Appropriate"


# ---- ThoughtSource: real model outputs with correctness labels -----------------------------

def thoughtsource_agreement(records: list[dict]) -> dict[str, dict[str, float]]:
    """Agreement of `extract_answer == gold` with ThoughtSource's `correct_answer`, and coverage
    (a letter was extracted), on the answer texts alone and on CoT + newline + answer text."""
    counts = {v: {"n": 0, "agree": 0, "covered": 0} for v in ("answer", "cot+answer")}
    for q in records:
        options = dict(zip(string.ascii_uppercase, q["choices"], strict=False))
        gold = q["answer"][0].strip()
        gold = gold.upper() if gold.upper() in options else next(
            k for k, v in options.items() if v.strip() == gold)
        for cot in q["generated_cot"]:
            for a in cot["answers"]:
                for variant, text in (("answer", a["answer"]),
                                      ("cot+answer", cot["cot"] + "\n" + a["answer"])):
                    got = extract_answer(text, options)
                    c = counts[variant]
                    c["n"] += 1
                    c["agree"] += (got == gold) == bool(a["correct_answer"])
                    c["covered"] += got is not None
    return {v: {"records": c["n"], "agreement": c["agree"] / c["n"],
                "coverage": c["covered"] / c["n"]} for v, c in counts.items()}


def test_thoughtsource_agreement() -> None:
    records = json.loads(gzip.decompress(DATA.read_bytes()))
    assert len(records) == 267
    result = thoughtsource_agreement(records)
    for variant, r in result.items():
        print(f"ThoughtSource {variant}: records={r['records']} "
              f"agreement={r['agreement']:.4f} coverage={r['coverage']:.4f}")
    # Measured 0.9957 on the answer texts (the 7 disagreements are records labelled incorrect
    # whose answer names the gold option, e.g. "B) Amoxicillin-clavulanate." for gold B) and
    # 0.9921 on CoT + answer (rules developed on the even-indexed questions; the odd half,
    # measured once at the end: 0.9919 and 0.9861). Thresholds: measured minus one point.
    assert result["answer"]["agreement"] >= 0.985
    assert result["cot+answer"]["agreement"] >= 0.982
    assert result["answer"]["records"] == 1641
