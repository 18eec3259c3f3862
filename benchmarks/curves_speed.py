"""Accuracy-vs-N curve speed: bestofn's array path against running every method per subset.

Workload: Q questions x n solutions (random answers A-D, some missing; PRM step scores, ORM
rewards), curves at N = 1, 2, 4, …, n with D draws per N; every method evaluate knows
(majority, 8 PRM methods, 2 ORM methods, oracle, single).

  reference   `question_outcomes` on every sub-item (the object path), timed on --ref-draws
              draws and scaled to D (it is linear in draws)
  vectorised  `bestofn.evaluation.curves.accuracy_curves` (arrays; exact same outcomes, ties
  included)

  python benchmarks/curves_speed.py [--questions 100] [-n 64] [--draws 200] [--ref-draws 4]
"""

from __future__ import annotations

import argparse
import random
import time

from bestofn.evaluation.curves import accuracy_curves, curve_ns
from bestofn.text.records import Item, Question, Solution, StepScores


def workload(questions: int, n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(questions):
        sols = [Solution("t", "t ки", rng.choice(["A", "B", "C", "D", None])) for _ in range(n)]
        prm = [StepScores(tuple(rng.random() for _ in range(rng.randint(3, 9))))
               for _ in range(n)]
        orm = [rng.gauss(0, 2) for _ in range(n)]
        items.append(Item(Question(f"q{i}", "s", {k: k for k in "ABCD"}, answer="A"), sols,
                          prm=prm, orm=orm))
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--ref-draws", type=int, default=4)
    a = ap.parse_args()
    items = workload(a.questions, a.n)
    ns = curve_ns(a.n)
    t0 = time.perf_counter()
    fast = accuracy_curves(items, ns=ns, draws=a.draws, seed=0)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = accuracy_curves(items, ns=ns, draws=a.ref_draws, seed=0, vectorised=False)
    t_ref = (time.perf_counter() - t0) * a.draws / a.ref_draws
    same = ref == accuracy_curves(items, ns=ns, draws=a.ref_draws, seed=0)
    print(f"{a.questions} questions x {a.n} solutions, N = {ns}, {a.draws} draws, "
          f"{len(fast.mean)} methods")
    print(f"{'path':<12} {'seconds':>9} {'ratio':>7}")
    print(f"{'reference':<12} {t_ref:>9.2f} {1.0:>7.2f}   "
          f"(measured on {a.ref_draws} draws, scaled)")
    print(f"{'vectorised':<12} {t_fast:>9.2f} {t_ref / t_fast:>7.1f}x")
    print(f"identical curves on {a.ref_draws} draws: {same}")


if __name__ == "__main__":
    main()
