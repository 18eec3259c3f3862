"""`bestofn verifier-eval`: how well a verifier's step scores find wrong steps.

Over the solutions of a labelled file (`bestofn.evaluation.labels`) that the verifier scored:
- ProcessBench at `threshold` (`step_metrics.processbench`, percent) and the best threshold;
- step AUROC: step scores against the hard labels (ProcessBench: the steps before the first
  error are right, the first error is wrong, later steps are unlabelled and left out);
- Brier score and ECE against the soft labels where every solution has them, else against
  the hard labels (`calibration_target` says which);
- outcome AUROC: the solution's aggregated score (`min` by default) against its outcome label
  (`final_answer_correct` / `orm_label` / `score`, else "no wrong step").
Intervals: percentile bootstrap over solutions (`bestofn.evaluation.intervals.draws`, the draw
every table
of the project uses); the best threshold is chosen on the whole file, without an interval.
A critic (`bestofn.scorers.critic`) predicts each solution's first error directly: `evaluate_critic`
gives the same ProcessBench numbers from its predictions (no prediction is a miss) and None for
the metrics that need step scores. Every accuracy and F1 is in percent. Several files in one
table, with a calibrated threshold and the unweighted mean: `bestofn.evaluation.verifier_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scorers.critic import CriticVerdict
from ..text.records import StepScores
from .intervals import CI_LEVEL, draws
from .labels import LabelledSolution
from .step_metrics import (
    auroc,
    best_threshold,
    brier,
    ece,
    match_interval,
    matches,
    processbench,
    threshold_candidates,
)

METRICS = ("acc_erroneous", "acc_correct", "processbench_f1", "step_auroc", "brier", "ece",
           "outcome_auroc")


@dataclass
class VerifierEval:
    """The metrics (None where undefined) and their bootstrap intervals."""

    n: int
    n_erroneous: int
    n_correct: int
    n_steps: int
    n_unscored: int
    threshold: float | None
    """None for a critic (its predictions need none)."""
    aggregation: str
    calibration_target: str | None
    values: dict[str, float | None]
    best_threshold: float | None
    best_f1: float | None
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    """Solutions per step-label source (`bestofn.evaluation.label_sources`: `label`, gemini,
    ...)."""
    critic: dict[str, Any] | None = None
    """A critic's counts: samples per solution, unparsable solutions (each a miss) and
    replies; None for step scores."""

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "n_erroneous": self.n_erroneous, "n_correct": self.n_correct,
                "n_steps": self.n_steps, "n_unscored": self.n_unscored,
                "threshold": self.threshold, **self.values,
                "best_threshold": self.best_threshold, "best_f1": self.best_f1,
                "aggregation": self.aggregation, "calibration_target": self.calibration_target,
                "labels": self.labels, "critic": self.critic,
                "intervals": {k: None if v is None else list(v)
                              for k, v in self.intervals.items()}}


@dataclass(frozen=True)
class _Arrays:
    """Flat arrays of the scored solutions, built once; every metric is a weighted sum."""

    lo: np.ndarray
    hi: np.ndarray
    erroneous: np.ndarray
    step_labelled: np.ndarray
    """Solutions with step labels (the ProcessBench rows)."""
    step_owner: np.ndarray
    step_scores: np.ndarray
    step_hard: np.ndarray
    cal_owner: np.ndarray
    cal_scores: np.ndarray
    cal_targets: np.ndarray
    outcome_owner: np.ndarray
    outcome_scores: np.ndarray
    outcome_labels: np.ndarray


def evaluate_steps(sols: Sequence[LabelledSolution], *, threshold: float = 0.5,
                   aggregation: str = "min", b: int = 1000, seed: int = 0,
                   level: float = CI_LEVEL) -> VerifierEval:
    """Every metric over the scored solutions, with bootstrap intervals (`b` = 0: none)."""
    scored = [s for s in sols if s.scores is not None]
    if not scored:
        raise ValueError("no scored solution: give --prm MODEL, or a file with PRM_score_list")
    arr, target = _arrays(scored, aggregation)
    values = _metrics(arr, threshold, None)
    lab = arr.step_labelled
    bt, bf = best_threshold(arr.lo[lab], arr.hi[lab], arr.erroneous[lab],
                            threshold_candidates(arr.step_scores))
    ev = VerifierEval(
        n=len(scored), n_erroneous=int((arr.erroneous & lab).sum()),
        n_correct=int((~arr.erroneous & lab).sum()), n_steps=len(arr.step_scores),
        n_unscored=len(sols) - len(scored), threshold=threshold, aggregation=aggregation,
        calibration_target=target, values=values, best_threshold=bt, best_f1=bf,
        labels=label_counts(scored))
    if b > 0:
        ev.intervals = _intervals(arr, threshold, len(scored), b, seed, level)
    return ev


def label_counts(sols: Sequence[LabelledSolution]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in sols:
        if s.label_source:
            out[s.label_source] = out.get(s.label_source, 0) + 1
    return out


def evaluate_critic(sols: Sequence[LabelledSolution], verdicts: Sequence[CriticVerdict], *,
                    b: int = 1000, seed: int = 0, level: float = CI_LEVEL) -> VerifierEval:
    """ProcessBench's accuracies and F1 of a critic's predicted first errors (an unparsable
    reply is a miss); the metrics that need step scores are None. Solutions without step
    labels are left out."""
    assert len(sols) == len(verdicts), (len(sols), len(verdicts))
    pairs = [(s, v) for s, v in zip(sols, verdicts, strict=True) if s.first_error is not None]
    if not pairs:
        raise ValueError("no solution with step labels for the critic")
    n = len(pairs)
    hit = np.array([v.prediction is not None and v.prediction == s.first_error
                    for s, v in pairs])
    # a match is the interval (-inf, inf] (it matches at any threshold), a miss an empty one
    lo = np.where(hit, -np.inf, 0.0)
    hi = np.where(hit, np.inf, 0.0)
    err = np.array([s.first_error != -1 for s, _ in pairs])
    empty_i, empty_f = np.zeros(0, int), np.zeros(0)
    arr = _Arrays(lo, hi, err, np.ones(n, bool), empty_i, empty_f, np.zeros(0, bool), empty_i,
                  empty_f, empty_f, empty_i, empty_f, np.zeros(0, bool))
    replies = [v for _, v in pairs]
    ev = VerifierEval(
        n=n, n_erroneous=int(err.sum()), n_correct=int((~err).sum()), n_steps=0,
        n_unscored=len(sols) - n, threshold=None, aggregation="critic",
        calibration_target=None, values=_metrics(arr, 0.5, None), best_threshold=None,
        best_f1=None, labels=label_counts([s for s, _ in pairs]),
        critic={"samples": max(len(v.replies) for v in replies),
                "unparsed": sum(v.prediction is None for v in replies),
                "unparsed_replies": sum(v.unparsed_replies for v in replies)})
    if b > 0:
        ev.intervals = _intervals(arr, 0.5, n, b, seed, level)
    return ev


def _arrays(sols: Sequence[LabelledSolution], aggregation: str) -> tuple[_Arrays, str | None]:
    lo, hi, err, lab = [], [], [], []
    so, ss, sh = [], [], []
    for i, s in enumerate(sols):
        sc = s.scores or []
        lab.append(s.first_error is not None)
        err.append(s.first_error not in (None, -1))
        a, z = match_interval(sc, s.first_error) if s.first_error is not None else (0.0, 0.0)
        lo.append(a)
        hi.append(z)
        for j, h in enumerate(s.hard or []):
            if h is not None:
                so.append(i)
                ss.append(sc[j])
                sh.append(h)
    soft = all(s.soft is not None for s in sols)
    target = "soft" if soft else ("hard" if so else None)
    if soft:
        co = [i for i, s in enumerate(sols) for _ in s.steps]
        cs = [x for s in sols for x in s.scores or []]
        ct = [x for s in sols for x in s.soft or []]
    else:
        co, cs, ct = so, ss, sh
    oo = [i for i, s in enumerate(sols) if s.outcome_label is not None]
    os_ = [StepScores(tuple(sols[i].scores or ())).aggregate(aggregation) for i in oo]
    ol = [sols[i].outcome_label for i in oo]
    f, n = np.asarray, np.float64
    return _Arrays(f(lo, n), f(hi, n), f(err, bool), f(lab, bool), f(so, int), f(ss, n),
                   f(sh, bool), f(co, int), f(cs, n), f(ct, n), f(oo, int), f(os_, n),
                   f(ol, bool)), target


def _metrics(a: _Arrays, threshold: float, w: np.ndarray | None) -> dict[str, float | None]:
    """Every metric under per-solution weights `w` (None: each solution once)."""
    def by(owner: np.ndarray) -> np.ndarray | None:
        return None if w is None else w[owner]

    lab = a.step_labelled
    m = matches(a.lo[lab], a.hi[lab], threshold)
    pb = processbench(m, a.erroneous[lab], None if w is None else w[lab])
    return {"acc_erroneous": pb.acc_erroneous, "acc_correct": pb.acc_correct,
            "processbench_f1": pb.f1,
            "step_auroc": auroc(a.step_scores, a.step_hard, by(a.step_owner)),
            "brier": brier(a.cal_scores, a.cal_targets, by(a.cal_owner)),
            "ece": ece(a.cal_scores, a.cal_targets, by(a.cal_owner)),
            "outcome_auroc": auroc(a.outcome_scores, a.outcome_labels, by(a.outcome_owner))}


def _intervals(a: _Arrays, threshold: float, n: int, b: int, seed: int,
               level: float) -> dict[str, tuple[float, float] | None]:
    rows = [_metrics(a, threshold, np.bincount(idx, minlength=n).astype(np.float64))
            for idx in draws(n, b=b, seed=seed)]
    return {k: _percentile([r[k] for r in rows], level) for k in METRICS}


def _percentile(vals: list[float | None], level: float) -> tuple[float, float] | None:
    v = np.array([x for x in vals if x is not None], dtype=np.float64)
    if not len(v):
        return None
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(v, [tail, 100 - tail])
    return float(lo), float(hi)


def score_labelled(sols: Sequence[LabelledSolution], scorer: Any, *,
                   progress: bool = True) -> list[LabelledSolution]:
    """Score every solution's steps with a PRM scorer (solutions of one question together, so
    the scorer sees them as one question's N). Scores already in the records are replaced."""
    from ..scorers.prm_files import score_items
    from ..text.records import Item, Question, Solution
    from ..text.steps import STEP_TAG

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(sols):
        groups.setdefault(s.question, []).append(i)
    items = [Item(Question(id=str(k), stem=q),
                  [Solution(text="\n".join(sols[i].steps), answer=None,
                            marked=" ".join(_flat(t) + STEP_TAG for t in sols[i].steps),
                            steps=list(sols[i].steps)) for i in idx])
             for k, (q, idx) in enumerate(groups.items())]
    scored = score_items(items, scorer, use_docs=False, progress=progress)
    out = list(sols)
    for it, idx in zip(scored, groups.values(), strict=True):
        for i, st in zip(idx, it.prm or [], strict=True):
            out[i] = _with_scores(sols[i], st)
    return out


def _flat(step: str) -> str:
    return " ".join(step.split())


def _with_scores(s: LabelledSolution, st: StepScores) -> LabelledSolution:
    import dataclasses

    if not st.scored:
        return dataclasses.replace(s, scores=None, unscored=st.reason)
    if len(st.probs) != len(s.steps):
        return dataclasses.replace(s, scores=None, unscored=f"{len(st.probs)} scores for "
                                   f"{len(s.steps)} steps (a step lost its marker)")
    return dataclasses.replace(s, scores=list(st.probs), unscored=None)


def format_report(ev: VerifierEval) -> str:
    """The human-readable table."""
    def fmt(k: str, pct: bool) -> str:
        v = ev.values.get(k)
        if v is None:
            return "n/a"
        ci = ev.intervals.get(k)
        f: Callable[[float], str] = (lambda x: f"{x:.1f}") if pct else (lambda x: f"{x:.3f}")
        return f(v) + (f"  [{f(ci[0])}, {f(ci[1])}]" if ci else "")

    lines = [f"{ev.n} scored solutions ({ev.n_erroneous} erroneous, {ev.n_correct} correct by "
             f"step labels; {ev.n_steps} labelled steps; {ev.n_unscored} unscored)",
             f"step labels: {label_summary(ev.labels)}"]
    if ev.critic is not None:
        c = ev.critic
        lines += [f"critic: {c['samples']} sample(s) per solution; {c['unparsed']} solutions "
                  f"without a parsable answer (counted as misses), {c['unparsed_replies']} "
                  "unparsable replies",
                  "ProcessBench, critic protocol (percent, 95% bootstrap CI):"]
    else:
        lines.append(f"ProcessBench at threshold {ev.threshold:g} (percent, 95% bootstrap CI):")
    lines += [f"  accuracy on erroneous  {fmt('acc_erroneous', True)}",
              f"  accuracy on correct    {fmt('acc_correct', True)}",
              f"  F1                     {fmt('processbench_f1', True)}"]
    if ev.critic is not None:
        return "\n".join(lines)
    if ev.best_threshold is not None:
        lines.append(f"  best threshold {ev.best_threshold:.4g}: F1 {ev.best_f1:.1f} "
                     "(chosen on this file: optimistic)")
    lines += [f"step AUROC (hard labels)  {fmt('step_auroc', False)}",
              f"Brier ({ev.calibration_target} labels)     {fmt('brier', False)}",
              f"ECE ({ev.calibration_target} labels, 10 bins) {fmt('ece', False)}",
              f"outcome AUROC ({ev.aggregation})     {fmt('outcome_auroc', False)}"]
    return "\n".join(lines)


def label_summary(labels: dict[str, int]) -> str:
    """`gemini (60)`, `label (40), hard (20)`: which step labels were read, and how often."""
    return ", ".join(f"{k} ({v})" for k, v in labels.items()) or "none"
