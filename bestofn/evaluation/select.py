"""Picking one answer from N scored solutions: best-of-N, weighted vote, majority vote, oracle.

Every method follows one `SelectionRules` value, the single definition of
- ties: `draw` breaks them by a seeded draw among the tied candidates,
  `random.Random(f"{seed}:{key}:{method}")` with `key` the question id, so a run is reproducible
  and no position in the list is favoured (tied answers are taken in sorted order, tied
  solutions in list order); `first` takes the first in list order (the first-seen answer for
  votes), as the published Med-PRM scripts do;
- whether solutions with no extracted answer vote (`none_votes`): under `strict` they never
  vote and are never picked; under `medprm` the answer None (or "") is a candidate like any
  other;
- grading (`grade`): `gold` compares the chosen answer with the question's gold answer; `label`
  reads the solutions' correctness labels (a Med-PRM file's `score`: best-of-N is correct when
  the chosen solution's label is 1, a vote when any solution with the chosen answer has label 1).

A solution with no score (no marker, too long) is left out of score-based methods under both.
The curves' array path (`bestofn.evaluation.subsets`) draws ties through `tie_index` below, and is
tested
against these functions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..text.confidence import KEEP_FRACTION, confidences, has_confidence, keep_top
from ..text.records import Item, Selection, Solution, StepScores

Answer = str | None


@dataclass(frozen=True)
class SelectionRules:
    """Tie rule, whether no-answer solutions vote, and how a choice is graded."""

    name: str = "strict"
    tie: str = "draw"
    """draw | first."""
    none_votes: bool = False
    grade: str = "gold"
    """gold | label (falls back to gold where a solution has no label)."""

    def __post_init__(self) -> None:
        if self.tie not in ("draw", "first") or self.grade not in ("gold", "label"):
            raise ValueError(f"bad selection rules {self}: tie is draw|first, grade gold|label")

    def tie_index(self, k: int, seed: int, key: str, method: str) -> int:
        """Which of `k` tied candidates (in the order the module docstring gives) wins."""
        if k == 1 or self.tie == "first":
            return 0
        return random.Random(f"{seed}:{key}:{method}").choice(range(k))

    def votes(self, answer: Answer) -> bool:
        return answer is not None or self.none_votes

    def answers(self, solutions: Sequence[Solution]) -> list[Answer]:
        """The vote keys: the extracted answers; with `none_votes`, an answer the file gave as
        "" stays "" (the published count keeps None and "" apart)."""
        if not self.none_votes:
            return [s.answer for s in solutions]
        return [s.meta.get("answer_raw", s.answer) for s in solutions]


STRICT = SelectionRules()
MEDPRM = SelectionRules(name="medprm", tie="first", none_votes=True, grade="label")
RULES = {r.name: r for r in (STRICT, MEDPRM)}
"""The named rule sets (`--rules NAME`)."""


def get_rules(name: str) -> SelectionRules:
    if name not in RULES:
        raise ValueError(f"unknown rules {name!r}; known: {', '.join(RULES)}")
    return RULES[name]


def _tied_order(tied: list[Answer], rules: SelectionRules) -> list[Answer]:
    if rules.tie == "first":
        return tied
    return sorted(tied, key=lambda a: (a is not None, a or ""))


def _pick(weights: dict[Answer, float], method: str, seed: int, key: str,
          rules: SelectionRules) -> Selection:
    if not weights:
        return Selection(None, method, reason="no solution with an extracted answer")
    top = max(weights.values())
    tied = _tied_order([a for a, w in weights.items() if w == top], rules)
    answer = tied[rules.tie_index(len(tied), seed, key, method)]
    return Selection(answer, method, dict(weights),  # type: ignore[arg-type]
                     tied=tied if len(tied) > 1 else [])  # type: ignore[arg-type]


def majority_vote(answers: Sequence[Answer], *, seed: int = 0, key: str = "",
                  rules: SelectionRules = STRICT) -> Selection:
    """The most frequent answer."""
    weights: dict[Answer, float] = {}
    for a in answers:
        if rules.votes(a):
            weights[a] = weights.get(a, 0.0) + 1.0
    return _pick(weights, "majority", seed, key, rules)


def weighted_vote(answers: Sequence[Answer], scores: Sequence[float | None], *,
                  method: str = "weighted", seed: int = 0, key: str = "",
                  rules: SelectionRules = STRICT) -> Selection:
    """The answer with the largest sum of solution scores (unscored solutions add nothing)."""
    _check(answers, scores)
    weights: dict[Answer, float] = {}
    for a, s in zip(answers, scores, strict=True):
        if rules.votes(a) and s is not None:
            weights[a] = weights.get(a, 0.0) + s
    sel = _pick(weights, method, seed, key, rules)
    if sel.answer is None and not weights and any(a is not None for a in answers):
        sel.reason = "no scored solution with an extracted answer"
    return sel


def best_of_n(answers: Sequence[Answer], scores: Sequence[float | None], *,
              method: str = "best", seed: int = 0, key: str = "",
              rules: SelectionRules = STRICT) -> Selection:
    """The answer of the highest-scoring solution among the scored solutions that may win."""
    _check(answers, scores)
    cand = [i for i, (a, s) in enumerate(zip(answers, scores, strict=True))
            if rules.votes(a) and s is not None]
    if not cand:
        return Selection(None, method, reason="no scored solution with an extracted answer")
    top = max(scores[i] for i in cand)  # type: ignore[type-var]
    tied_idx = [i for i in cand if scores[i] == top]
    index = tied_idx[rules.tie_index(len(tied_idx), seed, key, method)]
    weights: dict[Answer, float] = {}
    for i in cand:
        a = answers[i]
        weights[a] = max(weights.get(a, float("-inf")), scores[i])  # type: ignore[arg-type]
    tied = _tied_order(list(dict.fromkeys(answers[i] for i in tied_idx)), rules)
    return Selection(answers[index], method, weights,  # type: ignore[arg-type]
                     index=index, tied=tied if len(tied_idx) > 1 else [])  # type: ignore[arg-type]


def oracle(answers: Sequence[Answer], gold: str | None) -> bool:
    """Whether any solution's answer is correct (the ceiling of every reranker)."""
    return gold is not None and any(is_correct(a, gold) for a in answers)


def is_correct(answer: str | None, gold: str | None) -> bool:
    """Case- and whitespace-insensitive equality (letters, labels and open answers alike)."""
    if answer is None or gold is None:
        return False
    return " ".join(answer.split()).casefold() == " ".join(gold.split()).casefold()


def label_of(solution: Solution) -> bool | None:
    """A solution's recorded correctness (Med-PRM's `score` field), None where absent."""
    v = solution.meta.get("score")
    try:
        return None if v is None else float(v) == 1
    except (TypeError, ValueError):
        return None


def solution_correct(solution: Solution, gold: str | None, rules: SelectionRules) -> bool:
    """One solution's correctness under the rules' grading."""
    if rules.grade == "label":
        label = label_of(solution)
        if label is not None:
            return label
    return is_correct(solution.answer, gold)


def selection_correct(sel: Selection, solutions: Sequence[Solution], gold: str | None,
                      rules: SelectionRules) -> bool:
    """Whether a choice is right: its answer against the gold one, or by the labels."""
    if sel.reason is not None:
        return False
    if rules.grade == "gold":
        return is_correct(sel.answer, gold)
    if sel.index is not None:
        return solution_correct(solutions[sel.index], gold, rules)
    keys = rules.answers(solutions)
    return any(solution_correct(s, gold, rules)
               for s, k in zip(solutions, keys, strict=True) if k == sel.answer)


def aggregate_all(scores: Sequence[StepScores], how: str) -> list[float | None]:
    """One aggregate (min | final | mean | prod) per solution, None for unscored ones."""
    return [s.aggregate(how) for s in scores]


def orm_weights(scores: Sequence[float | None]) -> list[float | None]:
    """Softmax (temperature 1) over one question's scored solutions; None stays None.

    Reward-model outputs are unbounded logits and often negative, so summing them raw would
    let a wrong answer win by having fewer (negative) votes; the softmax turns them into
    positive weights that sum to 1, under which the vote is each answer's share of the mass.
    """
    got = [s for s in scores if s is not None]
    if not got:
        return list(scores)
    top = max(got)
    total = math.fsum(math.exp(s - top) for s in got)
    return [None if s is None else math.exp(s - top) / total for s in scores]


ScoreFn = Callable[[Item], "list[float | None] | None"]


@dataclass(frozen=True)
class Method:
    """One selection method: how it picks (`rule`) and which per-solution scores it reads.

    `rule` is `majority` (a plain vote), `best` (best-of-N by score) or `vote` (a vote
    weighted by score; `softmax` first turns a question's scores into weights that sum to 1).
    The scores come from a verifier (`needs`: `prm` with a step `aggregation`, or `orm`) or,
    for a method that reads no verifier, from `custom` (None where an item lacks them).
    `headline` methods are the report table's rows, in registration order.
    """

    name: str
    label: str
    rule: str
    needs: str | None = None
    aggregation: str | None = None
    softmax: bool = False
    headline: bool = False
    custom: ScoreFn | None = None

    def __post_init__(self) -> None:
        if self.rule not in ("majority", "best", "vote"):
            raise ValueError(f"method {self.name}: rule is majority|best|vote, not {self.rule}")
        if self.needs not in (None, "prm", "orm") or (self.needs == "prm") != bool(
                self.aggregation):
            raise ValueError(f"method {self.name}: needs prm (with an aggregation), orm or None")

    @property
    def score_key(self) -> str:
        """Methods with the same key read the same per-solution scores."""
        return f"prm:{self.aggregation}" if self.needs == "prm" else self.needs or self.name

    def scores(self, item: Item) -> list[float | None] | None:
        """Each solution's own score under this method (None: the item lacks them, or the
        method reads no score)."""
        if self.needs == "prm":
            return None if item.prm is None else aggregate_all(item.prm, self.aggregation or "")
        if self.needs == "orm":
            return None if item.orm is None else list(item.orm)
        return self.custom(item) if self.custom is not None else None

    def select(self, item: Item, answers: Sequence[Answer], *, seed: int, key: str,
               rules: SelectionRules) -> Selection | None:
        """This method's pick on one question (None when the item lacks its scores)."""
        if self.rule == "majority":
            return majority_vote(answers, seed=seed, key=key, rules=rules)
        scores = self.scores(item)
        if scores is None:
            return None
        if self.rule == "best":
            return best_of_n(answers, scores, method=self.name, seed=seed, key=key, rules=rules)
        return weighted_vote(answers, orm_weights(scores) if self.softmax else scores,
                             method=self.name, seed=seed, key=key, rules=rules)


METHODS: dict[str, Method] = {}
"""Every selection method by name, in registration order (the order reports list them)."""


def register_method(m: Method) -> None:
    """Add a selection method: evaluate, report, curves, the library and the server read it."""
    if m.name in METHODS or m.name in BOUNDS:
        raise ValueError(f"selection method {m.name!r} is already registered")
    METHODS[m.name] = m


BOUNDS = {"oracle": "Oracle (any correct)", "single": "Single solution (mean)"}
"""The reference lines every report shows beside the methods (not selection methods)."""

register_method(Method("majority", "Majority vote", "majority", headline=True))
for _how, _head in (("min", True), ("final", True), ("mean", False), ("prod", False)):
    register_method(Method(f"prm_{_how}", f"PRM best-of-N ({_how})", "best", needs="prm",
                           aggregation=_how, headline=_head))
for _how, _head in (("min", True), ("final", True), ("mean", False), ("prod", False)):
    register_method(Method(f"weighted_{_how}", f"PRM-weighted vote ({_how})", "vote",
                           needs="prm", aggregation=_how, headline=_head))
register_method(Method("orm_best", "ORM best-of-N", "best", needs="orm", headline=True))
register_method(Method("orm_weighted", "ORM-weighted vote (softmax)", "vote", needs="orm",
                       softmax=True, headline=True))


def item_confidences(item: Item) -> list[float | None] | None:
    """Each solution's DeepConf confidence (None: the policy recorded none)."""
    return confidences(item.solutions) if has_confidence(item.solutions) else None


def item_top_confidences(item: Item) -> list[float | None] | None:
    """DeepConf's filter: the top `KEEP_FRACTION` by confidence among the solutions with an
    extracted answer (the traces theirs ranks) keep their confidence, the rest None."""
    confs = item_confidences(item)
    if confs is None:
        return None
    return keep_top([c if s.answer is not None else None
                     for s, c in zip(item.solutions, confs, strict=True)], KEEP_FRACTION)


register_method(Method("confidence_weighted", "Confidence-weighted vote", "vote",
                       custom=item_confidences, headline=True))
register_method(Method("confidence_filtered", "Confidence top-10% vote", "vote",
                       custom=item_top_confidences, headline=True))


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


BUDGET_METHODS = ("prm_min", "majority")
"""The methods the report compares at equal generated tokens (`bestofn.evaluation.token_budget`):
best-of-N by the PRM's min aggregate, and majority vote."""


def table_keys() -> list[str]:
    """The headline methods, then the bounds: the rows and order of the report's table."""
    return [m.name for m in METHODS.values() if m.headline] + list(BOUNDS)


def labels() -> dict[str, str]:
    """Display names of the methods and the bounds."""
    return {**{m.name: m.label for m in METHODS.values()}, **BOUNDS}


def label(name: str) -> str:
    return labels().get(name, name)


def select_all(item: Item, *, seed: int = 0,
               rules: SelectionRules = STRICT) -> dict[str, Selection]:
    """Every applicable method's pick on one question (verifier methods only when so scored)."""
    answers = rules.answers(item.solutions)
    out = {}
    for m in METHODS.values():
        sel = m.select(item, answers, seed=seed, key=item.question.id, rules=rules)
        if sel is not None:
            out[m.name] = sel
    return out


def _check(answers: Sequence[object], scores: Sequence[object]) -> None:
    if len(answers) != len(scores):
        raise ValueError(f"expected one score per solution: {len(answers)} answers, "
                         f"{len(scores)} scores")
