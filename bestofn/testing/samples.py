"""Small inputs shared by the tests: questions, random solution texts, a Med-PRM file, the
sampling parameters of the policy tests."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

from bestofn.config import SamplingConfig
from bestofn.text.records import Question, Solution

WORDS = ["the", "patient", "fever", "cough", "acute", "renal", "failure", "therapy", "dose",
         "because", "so", "lung", "heart", "infection", "treat", "likely", "shows"]
QUESTION = Question("q1", "A 40-year-old man has fever. Which is most likely?",
                    {"A": "flu", "B": "cold", "C": "sepsis", "D": "asthma"})

PARAMS = SamplingConfig(temperature=0.7, top_k=50, max_tokens=16, seed=7)
HF_PARAMS = replace(PARAMS, max_tokens=8)


def mcq(qid: str = "q1") -> Question:
    return Question(id=qid, stem=f"Question {qid}: which one?",
                    options={"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"})


def steps_text(k: int, answer: str = "B", tag: str = "") -> str:
    body = "\n".join(f"Step {i}: reason {i}{tag}." for i in range(1, k + 1))
    return f"{body}\nthe answer is ({answer})."


def random_solution_text(rng: random.Random) -> str:
    """A random Med-PRM-style solution: 1-6 `Step i:` lines of random words and an answer."""
    steps = [" ".join(rng.choices(WORDS, k=rng.randint(3, 40))) for _ in range(rng.randint(1, 6))]
    head = "Let me think.\n" if rng.random() < 0.3 else ""
    body = "\n".join(f"{'## ' if rng.random() < 0.2 else ''}Step {i + 1}: {s}"
                     for i, s in enumerate(steps))
    return head + body + f" the answer is ({rng.choice('ABCD')})."


def random_solution(rng: random.Random) -> Solution:
    """A random solution to `QUESTION` (1-4 steps of random words), steps marked."""
    steps = [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(rng.randint(1, 4))]
    text = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
    return Solution.from_text(f"{text} the answer is ({rng.choice('ABCD')}).", QUESTION.options)


def medprm_file(path: Path, rng: random.Random, n_questions: int = 3,
                n_solutions: int = 4) -> list[dict]:
    """A Med-PRM JSON file of `n_questions` four-option questions (gold B), each with random
    two-step solutions labelled by correctness and one solution with no answer."""
    recs = []
    for i in range(n_questions):
        sols = []
        for _ in range(n_solutions):
            letter = rng.choice("ABCD")
            text = f"Step 1: fever {rng.random():.3f}\nStep 2: so the answer is ({letter})."
            sols.append({"solution": text, "answer": letter, "score": int(letter == "B")})
        sols.append({"solution": "I do not know.", "answer": None, "score": 0})
        recs.append({"question_id": f"q{i}", "data_source": "medqa",
                     "question": "Which?\n\n(A) a\n(B) b\n(C) c\n(D) d", "correct_answer": "B",
                     "related_docs": [f"document {i} about cough"], "solutions": sols})
    path.write_text(json.dumps(recs))
    return recs
