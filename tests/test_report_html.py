"""report.html: the embedded data against results.jsonl and report.json (fast tier), and the page
in a real browser (headless Chromium through Playwright; slow tier).

The run folders are written here from records built here (no model). The references are plain
loops over results.jsonl written in this file: under these records (distinct PRM scores, one
clear majority answer per question) every pick is defined without a tie.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import random
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from bestofn.cli import main
from bestofn.report import write_report
from bestofn.report.viewer import HTML_FILE, embedded
from bestofn.text.records import Document, Item, Question, Solution, StepScores

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "bestofn" / "report" / "viewer" / "assets"
SOURCES = ("medqa", "medmcqa", "pubmedqa")
HEADLINE = ("majority", "prm_min", "prm_final", "weighted_min", "weighted_final")
XSS = ("<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">',
       "</script><script>window.__xss = 3</script>", "<svg onload=window.__xss=4>",
       "<!-- <script>window.__xss = 5</script>")
"""Untrusted text: each would set `window.__xss` if the page ran it."""
WEIRD_ID = 'q<b>"\'&5'
NEEDLE = "cough"


def make_items(seed: int = 7, questions: int = 30) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(questions):
        gold = rng.choice("ABCD")
        top = rng.choice("ABCD" if rng.random() < 0.5 else gold)
        answers = [top] * rng.randint(3, 4)
        for other in rng.sample([x for x in "ABCD" if x != top], 2):
            answers += [other] * rng.randint(1, 2)
        answers += [None] * rng.randint(0, 1)
        rng.shuffle(answers)
        sols, prm = [], []
        for j, a in enumerate(answers):
            steps = [f"Step {k + 1}: {rng.choice(['fever', 'cough', 'renal'])} {j}-{k}."
                     for k in range(rng.randint(1, 4))]
            text = "\n".join(steps) + f" The answer is ({a})."
            sols.append(Solution(text=text, marked=text, answer=a, steps=steps,
                                 meta={"tokens": 40 + j, "index": j}))
            if rng.random() < 0.1:
                prm.append(StepScores.unscored("too long for the PRM"))
            else:
                hi = 1.0 if a == gold else 0.8
                k = len(steps) - (1 if len(steps) > 2 and rng.random() < 0.3 else 0)
                prm.append(StepScores(tuple(rng.uniform(0.05, hi) for _ in range(k))))
        stem = f"Question {i}: a patient with {rng.choice(['cough', 'rash', 'fever'])}."
        q = Question(f"q{i}", stem, {x: f"option {x}" for x in "ABCD"}, answer=gold,
                     source=SOURCES[i % 3],
                     documents=[Document(f"passage {i}", id=f"d{i}", title=f"Doc {i}",
                                         score=0.5)])
        items.append(Item(q, sols, prm=prm))
    items[4].question.answer = None
    x = items[3]
    x.question.stem += " " + XSS[0]
    x.question.options["B"] = XSS[1]
    x.question.id = WEIRD_ID
    x.question.documents = [Document(XSS[3], id="dx", title=XSS[2], score=0.9)]
    x.solutions[0].text = "\n".join(XSS)
    x.solutions[0].steps = list(XSS)
    x.prm[0] = StepScores(tuple(0.2 + 0.1 * k for k in range(len(XSS))))
    return items


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    items = make_items()
    with (out / "results.jsonl").open("w") as f:
        for it in items:
            f.write(json.dumps(it.to_dict()) + "\n")
    (out / "config.json").write_text(json.dumps({"dataset": "test set", "n": 8, "seed": 3}))
    assert main(["report", str(out), "--bootstrap", "50", "--draws", "4", "--no-plot"]) == 0
    return out


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def reference_picks(rec: dict) -> dict[str, str]:
    """The headline methods' picks by plain loops (strict rules, no ties in these records)."""
    answers = [s["answer"] for s in rec["solutions"]]
    votes = Counter(a for a in answers if a is not None)
    picks = {"majority": max(votes, key=lambda a: votes[a])}
    for how in ("min", "final"):
        scored = [(min(p["probs"]) if how == "min" else p["probs"][-1], a)
                  for a, p in zip(answers, rec["prm"], strict=True)
                  if a is not None and p["probs"]]
        picks[f"prm_{how}"] = max(scored)[1]
        weights: dict[str, float] = defaultdict(float)
        for score, a in scored:
            weights[a] += score
        picks[f"weighted_{how}"] = max(weights, key=lambda a: weights[a])
    return picks


def pick_min_score(rec: dict) -> float:
    """The PRM min score of the PRM best-of-N (min) pick: the largest min over scored solutions
    with an answer."""
    return max(min(p["probs"]) for s, p in zip(rec["solutions"], rec["prm"], strict=True)
               if s["answer"] is not None and p["probs"])


def picked_by_prm(rec: dict) -> int:
    """The solution PRM best-of-N (min) picks."""
    return max((min(p["probs"]), j) for j, (s, p) in enumerate(zip(rec["solutions"], rec["prm"],
                                                                  strict=True))
               if s["answer"] is not None and p["probs"])[1]


def reference_counts(recs: list[dict], below: float = 0.5) -> dict[str, int]:
    out = Counter()
    for rec in recs:
        q, picks = rec["question"], reference_picks(rec)
        out["wrong"] += q["answer"] is not None and picks["prm_min"] != q["answer"]
        out["disagree"] += len(set(picks.values())) > 1
        out["prmMaj"] += picks["prm_min"] != picks["majority"]
        out["low"] += pick_min_score(rec) < below
        out[f"source:{q['source']}"] += 1
        hay = "\n".join([q["id"], q["stem"], *q["options"].values()]).lower()
        out["text"] += NEEDLE in hay
    return dict(out)


# ---- fast tier: the embedded data ------------------------------------------------------


def test_the_index_holds_report_json_and_picks_equal_a_plain_loop(run_dir):
    idx, questions = embedded((run_dir / HTML_FILE).read_text())
    report = json.loads((run_dir / "report.json").read_text())
    assert idx["report"] == report
    recs = records(run_dir)
    assert [q["id"] for q in idx["questions"]] == [r["question"]["id"] for r in recs]
    assert len(questions) == len(recs) == report["counts"]["questions"]
    methods = idx["methods"]
    assert set(HEADLINE) <= set(methods) and idx["chosen"] == "prm_min"
    for row, rec in zip(idx["questions"], recs, strict=True):
        ref = reference_picks(rec)
        assert {m: row["pick"][methods.index(m)] for m in HEADLINE} == ref
        assert row["prm_min"] == pick_min_score(rec)
        gold = rec["question"]["answer"]
        assert row["ok"][methods.index("prm_min")] == (None if gold is None
                                                      else int(ref["prm_min"] == gold))
    for m in methods:
        oks = [row["ok"][methods.index(m)] for row in idx["questions"]]
        graded = [x for x in oks if x is not None]
        assert math.isclose(sum(graded) / len(graded), report["accuracy"][m], abs_tol=1e-12)


def test_each_question_record_holds_the_stored_scores(run_dir):
    _, questions = embedded((run_dir / HTML_FILE).read_text())
    for q, rec in zip(questions, records(run_dir), strict=True):
        assert q["id"] == rec["question"]["id"] and q["stem"] == rec["question"]["stem"]
        assert q["documents"] == [{k: d[k] for k in ("title", "text", "id", "score")}
                                  for d in rec["question"]["documents"]]
        for s, sol, p in zip(q["solutions"], rec["solutions"], rec["prm"], strict=True):
            assert s["steps"] == sol["steps"] and s["answer"] == sol["answer"]
            assert s["probs"] == p["probs"] and s.get("reason") == p["reason"]
            assert s.get("text", "\n".join(sol["steps"])) in (sol["text"], sol["text"].strip())


def test_the_page_is_self_contained_and_runs_only_its_own_script(run_dir):
    page = (run_dir / HTML_FILE).read_text()
    script = (ASSETS / "report.js").read_text()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert f"<script>{script}</script>" in page
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|https?://(?!www\.w3\.org/2000/svg)",
                         page.replace(script, ""))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "srcdoc"):
        assert sink not in script, sink
    # the untrusted text is only inside the encoded data: nothing of it reaches the markup
    for text in XSS:
        assert text not in page
    n_scripts = page.count("<script")
    assert page.count("</script>") == n_scripts == 2 + len(records(run_dir))


def test_a_scored_file_outside_a_run_folder_gets_its_page(tmp_path):
    f = tmp_path / "scored.jsonl"
    f.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in make_items(questions=6)))
    out = tmp_path / "rep"
    assert main(["report", str(f), "--out", str(out), "--bootstrap", "20", "--draws", "2",
                 "--no-plot"]) == 0
    idx, questions = embedded((out / HTML_FILE).read_text())
    assert len(questions) == 6 == len(idx["questions"])
    assert idx["report"] == json.loads((out / "report.json").read_text())


def test_the_same_results_give_the_same_page(tmp_path):
    items = make_items(questions=5)
    pages = []
    for name in ("a", "b"):
        write_report(tmp_path / name, items, {"dataset": "d"}, bootstrap=20, draws=2,
                     plot=False)
        pages.append((tmp_path / name / HTML_FILE).read_bytes())
    assert pages[0] == pages[1]


ADAPTIVE_RULE = "beta:eps=0.1,min_n=1,max_n=8"


def adaptive_and_search_items() -> list[Item]:
    """q0 stops by the rule after three A's (P = 1 - 1/16 >= 0.9); q1 reaches max_n = 8. Both
    carry a search log and solution lineages (as a search run writes them)."""
    def sols(answers: str, lineages: list[str]) -> list[Solution]:
        return [Solution(f"Step 1: x.\nStep 2: ({a}).", "", a, [f"Step 1: {k}.", f"Step 2: ({a})."],
                         meta={"lineage": lin, "tokens": 30}) for k, (a, lin) in
                enumerate(zip(answers, lineages, strict=True))]
    lin0 = ["0", "0.1.1", "0.1.1.2.1"]
    lin1 = ["0", "1", "2", "2.0.1", "3", "3.1.1", "3.1.2", "1.2.1"]
    log = [{"step": 0, "live": 4, "finished": 0, "kept": 3, "pruned": 1, "next": 4},
           {"step": 1, "live": 4, "finished": 1, "kept": 2, "pruned": 1, "next": 3},
           {"step": 2, "live": 3, "finished": 3, "kept": 0, "pruned": 0, "next": 0}]
    out = []
    for i, (answers, lins) in enumerate((("AAA", lin0), ("ABABCABD", lin1))):
        ss = sols(answers, lins)
        out.append(Item(Question(f"q{i}", "stem", {x: x for x in "ABCD"}, answer="A"), ss,
                        prm=[StepScores((0.9, 0.3 + 0.05 * k)) for k in range(len(ss))],
                        search={"strategy": "beam:width=2", "steps": log,
                                "tokens_generated": 100, "prm_tokens_computed": 50}))
    return out


def test_adaptive_stop_points_against_the_rule_by_hand(tmp_path):
    write_report(tmp_path, adaptive_and_search_items(), {"adaptive": ADAPTIVE_RULE},
                 bootstrap=20, draws=2, plot=False)
    _, (q0, q1) = embedded((tmp_path / HTML_FILE).read_text())
    assert q0["adaptive"]["samples"] == 3 and q0["adaptive"]["stopped_by"] == "rule"
    assert q0["adaptive"]["p_leader"] == pytest.approx(1 - 1 / 16)  # P(Bin(4, 1/2) >= 4)
    assert q1["adaptive"]["stopped_by"] == "max_n" and q1["adaptive"]["votes"] == {
        "A": 3, "B": 3, "C": 1, "D": 1}
    # P(Beta(4, 4) > 1/2) = P(Bin(7, 1/2) >= 4) = 1/2
    assert q1["adaptive"]["p_leader"] == pytest.approx(0.5)
    assert q0["search"]["steps"][1]["pruned"] == 1
    assert [s["lineage"] for s in q1["solutions"]][3] == "2.0.1"


# ---- slow tier: the page in Chromium ---------------------------------------------------


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("no Chromium: apt-get install chromium (.ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(the dev extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A fresh page on `url` that records console errors and uncaught exceptions."""

    def __init__(self, browser, url: str, **context) -> None:
        self.ctx = browser.new_context(viewport={"width": 1200, "height": 760}, **context)
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.wait_for_selector("html[data-ready='1']", timeout=20_000)

    def open(self, i: int) -> None:
        self.page.click(f"#list li[data-i='{i}']")
        self.page.wait_for_selector("#question ol.steps li", timeout=20_000)

    def close(self) -> None:
        self.ctx.close()


@pytest.mark.slow
def test_the_overview_shows_report_json(browser, run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    p = Page(browser, (run_dir / HTML_FILE).as_uri())
    pg = p.page
    assert pg.text_content("#n-questions") == str(report["counts"]["questions"])
    assert pg.text_content("#n-graded") == str(report["counts"]["graded"])
    assert len(pg.query_selector_all("#list li")) == report["counts"]["questions"]
    for m, v in report["accuracy"].items():
        assert pg.text_content(f"#accuracy tr[data-method='{m}'] td.acc") == f"{100 * v:.2f}%"
    (line,) = pg.query_selector_all("#curves polyline[data-method='prm_min']")
    assert len(line.get_attribute("points").split()) == len(report["curves"]["ns"])
    compute = [[c.text_content() for c in r.query_selector_all("td")]
               for r in pg.query_selector_all("#compute tbody tr")]
    assert compute[0][1:] == [f"{report['compute']['samples_drawn']:,}",
                              f"{report['compute']['samples_drawn'] / 30:.1f}"]
    assert compute[2][1] == f"{report['compute']['tokens_generated']:,}"
    assert len(pg.query_selector_all("#by-source tbody tr")) == len(SOURCES)
    shots(pg, "report_overview.png")
    assert p.errors == []
    p.close()


@pytest.mark.slow
def test_a_question_shows_its_steps_with_the_stored_scores(browser, run_dir):
    recs = records(run_dir)
    p = Page(browser, (run_dir / HTML_FILE).as_uri())
    pg = p.page
    i = 7
    p.open(i)
    pg.click("text=expand all")
    rec = recs[i]
    assert pg.text_content("#qid") == rec["question"]["id"]
    assert pg.text_content("#gold") == rec["question"]["answer"]
    for j, (sol, sc) in enumerate(zip(rec["solutions"], rec["prm"], strict=True)):
        lis = pg.query_selector_all(f"details.sol[data-index='{j}'] ol.steps li")
        assert len(lis) == len(sol["steps"])
        for k, li in enumerate(lis):
            chip = li.query_selector(".p")
            if k < len(sc["probs"]):
                assert float(chip.get_attribute("data-p")) == sc["probs"][k]
                assert chip.text_content() == f"{sc['probs'][k]:.3f}"
            else:
                assert chip.get_attribute("data-p") is None
                assert (sc["reason"] or "returned") in li.text_content()
        if sc["probs"]:
            low = min(sc["probs"])
            marked = pg.query_selector_all(f"details.sol[data-index='{j}'] ol.steps li.min")
            assert len(marked) == 1
            assert float(marked[0].query_selector(".p").get_attribute("data-p")) == low
    groups = {g.get_attribute("data-answer"): len(g.query_selector_all("details.sol"))
              for g in pg.query_selector_all(".group")}
    assert groups == Counter("(none)" if s["answer"] is None else s["answer"]
                             for s in rec["solutions"])
    picks = reference_picks(rec)
    for m in HEADLINE:
        assert pg.text_content(f"#picks tr[data-method='{m}'] td.pick") == picks[m]
    assert pg.text_content("#documents") and "passage 7" in pg.text_content("#documents")
    pg.click("text=collapse all")
    pg.click(f"details.sol[data-index='{picked_by_prm(rec)}'] summary")
    pg.eval_on_selector("#solutions", "e => e.scrollIntoView()")
    shots(pg, "report_question.png")
    assert p.errors == []
    p.close()


@pytest.mark.slow
def test_every_filter_count_equals_a_plain_loop(browser, run_dir):
    ref = reference_counts(records(run_dir))
    p = Page(browser, (run_dir / HTML_FILE).as_uri())
    pg = p.page

    def shown() -> int:
        n = int(pg.text_content("#shown"))
        assert len(pg.query_selector_all("#list li")) == n
        return n

    for key in ("wrong", "disagree", "prmMaj", "low"):
        assert pg.text_content(f"#count-{key}") == str(ref[key]), key
        pg.check(f"#f-{key}")
        assert shown() == ref[key], key
        pg.uncheck(f"#f-{key}")
    for src in SOURCES:
        pg.select_option("#f-source", src)
        assert pg.text_content("#count-source") == str(ref[f"source:{src}"]) == str(shown())
    pg.select_option("#f-source", "")
    pg.fill("#f-text", NEEDLE.upper())
    assert pg.text_content("#count-text") == str(ref["text"]) == str(shown())
    pg.fill("#f-text", "")
    assert shown() == len(records(run_dir))
    # the lowest PRM min first
    pg.select_option("#f-sort", "prm_min")
    order = [int(li.get_attribute("data-i")) for li in pg.query_selector_all("#list li")]
    recs = records(run_dir)
    assert order == sorted(range(len(recs)), key=lambda i: (pick_min_score(recs[i]), i))
    assert p.errors == []
    p.close()


@pytest.mark.slow
def test_keyboard_and_url_fragment(browser, run_dir):
    recs = records(run_dir)
    url = (run_dir / HTML_FILE).as_uri()
    p = Page(browser, url + "#q=q9")
    pg = p.page
    pg.wait_for_selector("#question[data-id='q9']")
    pg.keyboard.press("j")
    pg.wait_for_selector("#question[data-id='q10']")
    pg.keyboard.press("ArrowUp")
    pg.keyboard.press("k")  # before the view of q9 is drawn: keys move from the last target
    pg.wait_for_selector("#question[data-id='q8']")
    assert pg.evaluate("decodeURIComponent(location.hash)") == "#q=q8"
    pg.keyboard.press("Escape")
    pg.wait_for_selector("#accuracy")
    assert recs[8]["question"]["id"] == "q8" and p.errors == []
    p.close()


@pytest.mark.slow
@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])
def test_untrusted_text_shows_as_text_and_runs_nothing(browser, run_dir, bypass_csp):
    """With the page's Content-Security-Policy and without it (`bypass_csp`): the escaping
    alone must keep the payloads inert."""
    p = Page(browser, (run_dir / HTML_FILE).as_uri(), bypass_csp=bypass_csp)
    pg = p.page
    p.open(3)
    pg.click("text=expand all")
    for d in pg.query_selector_all("#documents details"):
        d.click()
    main_text = pg.text_content("#main")
    assert pg.text_content("#qid") == WEIRD_ID
    for text in XSS:
        assert text in main_text, text
    assert pg.evaluate("window.__xss") is None
    assert pg.evaluate("document.querySelectorAll('img, iframe, #main script').length") == 0
    assert pg.evaluate("document.querySelectorAll('svg').length") == 0  # no curves on a question
    assert pg.evaluate("decodeURIComponent(location.hash)") == "#q=" + WEIRD_ID
    pg.reload()
    pg.wait_for_selector("#question ol.steps li", timeout=20_000)
    assert pg.text_content("#qid") == WEIRD_ID and pg.evaluate("window.__xss") is None
    assert p.errors == []
    p.close()


@pytest.mark.slow
def test_search_tree_and_adaptive_stop_point_appear(browser, tmp_path):
    from bestofn.evaluation.token_budget import Run, compare
    from bestofn.testing.items import random_items

    items = adaptive_and_search_items()
    bon = random_items(3, 2, 8, tokens=True, unscored_rate=0.0)
    vs = compare(Run("bon", bon), [Run("beam", items)], b=20)
    write_report(tmp_path, items, {"adaptive": ADAPTIVE_RULE, "dataset": "a search test run"},
                 bootstrap=20, draws=2, plot=False, extra={"search_vs_best_of_n": vs,
                                    "adaptive": {"rule": ADAPTIVE_RULE, "round_size": 1,
                                                 "n_max": 8, "samples": 11, "budget": 16,
                                                 "mean_samples": 5.5},
                                    "search": {"strategy": "beam:width=2", "n": 8,
                                               "finished": 11, "pruned": 4,
                                               "tokens_generated": 200,
                                               "prm_tokens_computed": 100}})
    p = Page(browser, (tmp_path / HTML_FILE).as_uri())
    pg = p.page
    assert "11 samples drawn of the fixed-N budget 16" in pg.text_content("#adaptive-summary")
    assert "beam:width=2" in pg.text_content("#search-summary")
    cells = [c.text_content()
             for c in pg.query_selector_all("#search-vs-bon tr[data-run='beam'] td")]
    (run,) = vs["runs"]
    assert cells[2] == f"{run['mean_tokens']:.1f}" == f"{(3 * 30 + 8 * 30) / 2:.1f}"
    assert cells[3].startswith(f"{100 * run['prm_min']['accuracy']:.2f}%")
    assert cells[5] == f"{run['best_of_n_at_budget']['k']} " \
                       f"({run['best_of_n_at_budget']['mean_tokens']:.0f})"
    p.open(0)
    box = pg.text_content("#adaptive")
    assert "3 (min 1, max 8)" in box and "the rule settled" in box and "0.9375" in box
    rows = pg.query_selector_all("#search-steps tbody tr")
    assert [[c.text_content() for c in r.query_selector_all("td")] for r in rows] == [
        [str(s[k]) for k in ("step", "live", "finished", "kept", "pruned", "next")]
        for s in items[0].search["steps"]]
    assert pg.query_selector("#search-tree li[data-lineage='0'] > ul > "
                             "li[data-lineage='0.1.1'] > ul > li[data-lineage='0.1.1.2.1']")
    pg.eval_on_selector("#adaptive", "e => e.scrollIntoView()")
    shots(pg, "report_search.png")
    p.open(1)
    assert "max_n reached" in pg.text_content("#adaptive")
    for parent, child in (("2", "2.0.1"), ("3", "3.1.2"), ("1", "1.2.1")):
        assert pg.query_selector(f"#search-tree li[data-lineage='{parent}'] > ul > "
                                 f"li[data-lineage='{child}']"), child
    assert p.errors == []
    p.close()


@pytest.mark.slow
def test_a_run_without_verifiers_or_gold_answers_loads(browser, tmp_path):
    from bestofn.testing.items import random_items

    items = random_items(1, 5, (1, 4), prm=False, none_rate=0.3)
    for it in items:
        it.question.answer = None
    write_report(tmp_path, items, {}, bootstrap=20, draws=2, plot=False)
    p = Page(browser, (tmp_path / HTML_FILE).as_uri())
    assert p.page.text_content("#n-graded") == "0"
    assert p.page.query_selector("#f-prmMaj") is None
    p.open(2)
    assert p.page.text_content("#gold") == "(none)"
    assert p.errors == []
    p.close()


def shots(page, name: str) -> None:
    """A screenshot of the view; with BESTOFN_SCREENSHOTS=1 it is written into docs/ (128
    colours, to keep the repository small)."""
    png = page.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("BESTOFN_SCREENSHOTS"):
        import io

        from PIL import Image

        Image.open(io.BytesIO(png)).quantize(128).save(ROOT / "docs" / name, optimize=True)
