"""report.html at scale: size and load time of the page of a 1,273 x 64 run in headless Chromium.

The run is generated (no model): the 1,273 bundled MedQA questions, 64 solutions each of 3-8
`Step i:` steps of 15-45 words drawn from the word frequencies of the MedQA questions
themselves (real medical vocabulary; unigram draws compress worse than real text, so the size
is on the high side), an answer that is the gold one at a question-dependent rate, PRM P(+)
per step (some solutions unscored), an ORM reward, token counts, and 5 retrieved documents of
80-160 words per question from a pool of 4,000. Written as a run folder (results.jsonl,
config.json); `write_report` writes report.json and report.html (bootstrap and draws kept small:
the report's numbers are not what is measured here).

Load time: Chromium (Debian's, through Playwright) opens the file from disk; measured from
navigation start (`performance.now()` in the page) to
- ready: the index decoded, the overview and the question list rendered (the page usable);
- DOMContentLoaded: every question's embedded record parsed;
- first question: a load with `#q=<id>` in the URL, until that question's view is rendered;
and, on the open page, the time to open a question (click in the list) and to apply a filter.
Median of `--repeats` fresh browser pages.

    python benchmarks/report_html.py [--questions 1273] [--n 64] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bestofn.report import write_report
from bestofn.report.viewer import write_html
from bestofn.text.datasets import load_questions
from bestofn.text.files import read_items
from bestofn.text.records import Document, Item, Solution, StepScores

CHROMIUM = "/usr/bin/chromium"


def generate(n_questions: int, n: int, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    questions = load_questions("medqa")[:n_questions]
    freq = Counter(w for q in questions for w in re.findall(r"[A-Za-z][a-z-]+|\d+", q.stem))
    vocab = np.array(list(freq))
    p = np.array(list(freq.values()), dtype=float)
    p /= p.sum()

    def words(k: int) -> str:
        return " ".join(vocab[rng.choice(len(vocab), size=k, p=p)])

    pool = [Document(text=words(int(rng.integers(80, 160))), id=f"doc{i}",
                     title=words(4).title(), score=None) for i in range(4000)]
    items = []
    for q in questions:
        letters = list(q.options)
        rate = float(rng.uniform(0.2, 0.9))
        docs = [pool[int(i)] for i in rng.choice(len(pool), size=5, replace=False)]
        q.documents = [Document(d.text, d.id, d.title, round(float(rng.uniform(0.3, 0.9)), 4))
                       for d in docs]
        sols, prm, orm = [], [], []
        for j in range(n):
            right = rng.random() < rate
            ans = q.answer if right else str(rng.choice([x for x in letters if x != q.answer]))
            steps = [f"Step {k + 1}: {words(int(rng.integers(15, 45)))}."
                     for k in range(int(rng.integers(3, 9)))]
            steps[-1] += f" The answer is ({ans})."
            text = "\n".join(steps)
            sols.append(Solution(text=text, marked=text, answer=ans, steps=steps,
                                 meta={"tokens": int(len(text) / 4), "index": j,
                                       "finish_reason": "stop"}))
            lo = 0.5 if right else 0.1
            prm.append(StepScores.unscored("too long for the PRM") if rng.random() < 0.02 else
                       StepScores(tuple(round(float(x), 6) for x in
                                        rng.uniform(lo, 1.0, size=len(steps)))))
            orm.append(round(float(rng.normal(1.0 if right else -1.0, 2.0)), 5))
        items.append(Item(q, sols, prm=prm, orm=orm))
    return items


def write_run(out: Path, items: list[Item]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w") as f:
        for it in items:
            f.write(json.dumps(it.to_dict()) + "\n")
    (out / "config.json").write_text(json.dumps({"dataset": "medqa (generated solutions)",
                                                  "n": len(items[0].solutions), "seed": 0}))


def measure(page_path: Path, first_id: str, repeats: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    got: dict[str, list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else 0)
            page.goto(page_path.as_uri(), wait_until="commit", timeout=120_000)
            page.wait_for_selector("html[data-ready='1']", timeout=120_000)
            page.wait_for_load_state("domcontentloaded", timeout=120_000)
            t = page.evaluate("[window.__reportReadyAt, performance.getEntriesByType("
                              "'navigation')[0].domContentLoadedEventEnd]")
            got.setdefault("ready_ms", []).append(t[0])
            got.setdefault("dom_content_loaded_ms", []).append(t[1])
            t0 = time.perf_counter()
            page.click("#list li:nth-child(5)")
            page.wait_for_selector("#question ol.steps li")
            got.setdefault("open_question_ms", []).append(1000 * (time.perf_counter() - t0))
            got.setdefault("filter_ms", []).append(page.evaluate(
                "(() => { const t = performance.now(); document.getElementById('f-disagree')"
                ".click(); return performance.now() - t; })()"))
            assert not errors, errors
            page.close()
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(page_path.as_uri() + "#q=" + first_id, wait_until="commit",
                      timeout=120_000)
            page.wait_for_selector("#question ol.steps li", timeout=120_000)
            got.setdefault("first_question_ms", []).append(page.evaluate("performance.now()"))
            page.close()
        browser.close()
    return {k: round(statistics.median(v), 1) for k, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=1273)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bestofn_report_html"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    items = generate(a.questions, a.n)
    write_run(a.out, items)
    print(f"generated {a.questions} x {a.n} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    items = read_items(a.out / "results.jsonl")
    t0 = time.perf_counter()
    data = write_report(a.out, items, json.loads((a.out / "config.json").read_text()),
                        bootstrap=200, draws=10, plot=False)
    report_s = time.perf_counter() - t0
    before = (a.out / "report.html").read_bytes()
    t0 = time.perf_counter()
    path = write_html(a.out, items, data)
    html_s = time.perf_counter() - t0
    page = path.read_text()
    assert page.encode() == before, "the page is not the same bytes when written again"
    results = path.stat().st_size
    index = len(re.search(r'id="index">([^<]*)<', page).group(1))  # type: ignore[union-attr]
    row = {"questions": a.questions, "n": a.n,
           "results_jsonl_mb": round((a.out / "results.jsonl").stat().st_size / 1e6, 1),
           "report_html_mb": round(results / 1e6, 1), "index_kb": round(index / 1e3, 1),
           "write_report_s": round(report_s, 1), "render_html_s": round(html_s, 1),
           **measure(path, items[0].question.id, a.repeats)}
    print(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
