"""Random scored questions for the tests of selection, evaluation, reports, curves and adaptive
replay: one factory, configured per test, instead of one hand-written loop per test module."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bestofn.text.records import Item, Question, Solution, StepScores

TIE_VALUES = (0.1, 0.2, 0.3, 0.6)
"""Scores drawn from a few values (`ties=True`): equal scores and equal vote sums occur, and
float sums of 0.1, 0.2, 0.3 depend on the order of addition."""


def random_items(seed: int, questions: int, n: int | tuple[int, int], *,
                 letters: str = "ABCD", gold_rate: float | Sequence[float] | None = None,
                 none_rate: float = 0.0, variants: Sequence[str] = (),
                 steps: tuple[int, int] = (1, 3), unscored_rate: float = 0.1,
                 ties: bool = False, prm: bool = True, orm: bool = False,
                 orm_none_rate: float = 0.0, tokens: bool = False,
                 sources: Sequence[str] = ()) -> list[Item]:
    """`questions` items with `n` solutions each (or a random count in an (lo, hi) range).

    Answers: None with `none_rate`; with `gold_rate` (one rate, or a rate drawn per question
    from several) the gold letter at that rate and another letter otherwise, and PRM scores
    then favour the gold answer; without it, uniform over `letters` and `variants` (e.g. "b",
    a lower-case variant that must not count as B). PRM: `steps` random step scores per
    solution, unscored with `unscored_rate`. ORM (`orm`): a Gaussian reward (a few values
    with `ties`), None with `orm_none_rate`. `tokens` records `meta["tokens"]` and `index`.
    """
    rng = random.Random(seed)
    lo, hi = (n, n) if isinstance(n, int) else n
    items = []
    for i in range(questions):
        gold = rng.choice(letters)
        rate = rng.choice(list(gold_rate)) if isinstance(gold_rate, Sequence) else gold_rate
        sols, step_scores, rewards = [], [], []
        for j in range(rng.randint(lo, hi)):
            ans = _answer(rng, gold, letters, rate, none_rate, variants)
            text = f"Step 1: think.\nThe answer is ({ans})."
            meta = {"tokens": rng.randint(20, 200), "index": j} if tokens else {}
            sols.append(Solution(text=text, marked=text + " ки", answer=ans, meta=meta))
            k = rng.randint(*steps)
            probs = tuple(_score(rng, ans == gold, rate, ties) for _ in range(k))
            step_scores.append(StepScores.unscored("no step marker")
                               if rng.random() < unscored_rate else StepScores(probs))
            reward = rng.choice([-1.0, 0.0, 2.0]) if ties else rng.gauss(0, 3)
            rewards.append(None if rng.random() < orm_none_rate else reward)
        q = Question(f"q{i}", "stem", {c: c for c in letters}, answer=gold,
                     source=sources[i % len(sources)] if sources else "")
        items.append(Item(q, sols, prm=step_scores if prm else None,
                          orm=rewards if orm else None))
    return items


def _answer(rng: random.Random, gold: str, letters: str, rate: float | None, none_rate: float,
            variants: Sequence[str]) -> str | None:
    if rng.random() < none_rate:
        return None
    if rate is None:
        return rng.choice([*letters, *variants])
    return gold if rng.random() < rate else rng.choice([c for c in letters if c != gold])


def _score(rng: random.Random, right: bool, rate: float | None, ties: bool) -> float:
    if ties:
        return rng.choice(TIE_VALUES)
    if rate is None:
        return rng.random()
    return rng.uniform(0.5, 1.0) if right else rng.uniform(0.0, 0.7)
