"""report.md: the report's numbers as tables in percent, section by section."""

from __future__ import annotations

from typing import Any

from ..evaluation import token_budget
from ..evaluation.columns import benchmark_markdown
from ..evaluation.select import get_rules, label, labels
from .figures import CSV_FILE, PLOT_FILE, PLOT_INSTALL, headline


def markdown(data: dict[str, Any], *, plot: str = "off") -> str:
    parts = ["# bestofn report", _settings_md(data), _accuracy_md(data),
             benchmark_markdown(data.get("benchmarks", {}), headline(data["accuracy"]), labels()),
             _compute_md(data), _adaptive_md(data), _sources_md(data),
             _curves_md(data, plot), _budget_md(data, plot), _failures_md(data),
             _config_md(data["config"])]
    return "\n\n".join(p for p in parts if p) + "\n"


def _settings_md(data: dict[str, Any]) -> str:
    s, c = data["settings"], data["counts"]
    docs = {True: "yes", False: "no", None: "not recorded"}[s["documents"]]
    rows = [("dataset", s["dataset"]), ("policy", s["policy"]), ("PRM", s["prm"]),
            ("ORM", s["orm"]), ("solutions per question (N)", s["n"]), ("seed", s["seed"]),
            ("documents in the verifier prompt", docs)]
    table = _table(["setting", "value"], [[k, "—" if v is None else f"`{v}`"] for k, v in rows])
    return (f"{table}\n\n{c['graded']} questions graded ({c['questions']} in the results, "
            f"{c['ungraded']} without a gold answer, {c['failed']} failed); {c['solutions']} "
            f"solutions, {c['unscored']} unscored by the PRM, {c['orm_unscored']} by the ORM, "
            f"{c['no_answer']} without an extracted answer.{_rules_md(data)}")


def _compute_md(data: dict[str, Any]) -> str:
    c = data.get("compute")
    if not c:
        return ""
    q = max(data["counts"]["questions"], 1)
    rows = [[label, f"{c[k]:,}", f"{c[k] / q:,.1f}"] for k, label in (
        ("samples_drawn", "samples kept"), ("samples_aborted", "samples aborted or thrown away"),
        ("tokens_generated", "tokens generated"), ("tokens_aborted", "of which thrown away"),
        ("prm_tokens_computed", "PRM tokens computed"))]
    rows += [[label, "—" if c.get(k) is None else f"{c[k]:.1f} s", ""] for k, label in (
        ("startup_s", "engine start-up"), ("sample_s", "sampling"), ("score_s", "scoring"),
        ("select_s", "selection and report"))]
    return ("## Compute\n\nWhat the accuracies above cost (stage seconds may overlap: scoring "
            "runs while the engine samples).\n\n"
            + _table(["", "total", "per question"], rows, right=(1, 2)))


def _adaptive_md(data: dict[str, Any]) -> str:
    ad = data.get("adaptive")
    if not ad:
        return ""
    share = 100 * ad["samples"] / max(ad["budget"], 1)
    how = ("streamed sample by sample" if ad["round_size"] == "streamed"
           else f"rounds of {ad['round_size']}")
    return (f"## Adaptive compute\n\nStopping rule `{ad['rule']}`, "
            f"{how}: {ad['samples']} samples drawn of the fixed-N budget "
            f"{ad['budget']} ({share:.1f}%), {ad['mean_samples']:.2f} per question (at most "
            f"{ad['n_max']}).")


def _rules_md(data: dict[str, Any]) -> str:
    if "rules" not in data:
        return ""
    r = get_rules(data["rules"])
    text = (f"\n\nSelection rules: `{r.name}` (ties: {r.tie}; no-answer solutions "
            f"{'vote' if r.none_votes else 'never vote'}; graded by {r.grade})")
    n = data.get("n_unlabelled", 0)
    return text + (f"; {n} solutions have no correctness label and were graded by the gold "
                   "answer." if n else ".")


def _accuracy_md(data: dict[str, Any]) -> str:
    if not data["accuracy"]:
        return "## Accuracy\n\nNo question with a gold answer: nothing to grade."
    level = round(100 * data["ci_level"])
    rows = [[label(m), f"{100 * v:.2f}%", _interval(data["ci"].get(m))]
            for m, v in data["accuracy"].items()]
    return (f"## Accuracy\n\nAccuracy over the graded questions; {level}% percentile-bootstrap "
            f"interval from {data['bootstrap']} resamples of the questions.\n\n"
            + _table(["method", "accuracy", f"{level}% CI"], rows, right=(1, 2)))


def _sources_md(data: dict[str, Any]) -> str:
    src = data["by_source"]
    if not src:
        return ""
    methods = headline(data["accuracy"])
    rows = [[name, str(s["n_questions"]),
             *(f"{100 * s['accuracy'][m]:.1f}" if m in s["accuracy"] else "—" for m in methods)]
            for name, s in src.items()]
    return ("## By source\n\nAccuracy (%) per `Question.source`; intervals are in "
            "report.json.\n\n" + _table(["source", "questions",
                                          *(label(m) for m in methods)], rows,
                                         right=tuple(range(1, len(methods) + 2))))


def _curves_md(data: dict[str, Any], plot: str) -> str:
    c = data["curves"]
    if not c["ns"]:
        return ""
    level = round(100 * c["level"])
    figure = {"drawn": f"![accuracy vs N]({PLOT_FILE})\n\n",
              "missing": f"(plot not drawn: {PLOT_INSTALL})\n\n"}.get(plot, "")
    head = (f"## Accuracy vs N\n\n{figure}"
            f"Accuracy (%) with N of each question's solutions: the mean over {c['draws']} "
            f"random subsets per question, and in brackets the {level}% range over draws of "
            f"the across-question accuracy. Data: `{CSV_FILE}`.")
    if any(c["n_short"]):
        head += (" Questions with fewer than N solutions use all of theirs: "
                 + ", ".join(f"N={n}: {k}" for n, k in zip(c["ns"], c["n_short"], strict=True)
                             if k) + ".")
    rows = [[label(m), *(_point(v["mean"][j], v["lo"][j], v["hi"][j])
                                 for j in range(len(c["ns"])))]
            for m, v in c["methods"].items()]
    return head + "\n\n" + _table(["method", *(f"N={n}" for n in c["ns"])], rows,
                                  right=tuple(range(1, len(c["ns"]) + 1)))


def _budget_md(data: dict[str, Any], plot: str) -> str:
    got = data.get("search_vs_best_of_n")
    return token_budget.markdown(got, plot == "drawn") if got else ""


def _failures_md(data: dict[str, Any]) -> str:
    if not data["failures"]:
        return ""
    rows = []
    for f in data["failures"]:
        d = f if isinstance(f, dict) else {"error": str(f)}
        err = str(d.get("error", "")).strip().splitlines()
        rows.append([str(d.get("question_id", d.get("id", "?"))), str(d.get("stage", "")),
                     str(d.get("attempts", "")), (err[-1] if err else "")[:160]])
    return (f"## Failed questions ({len(rows)})\n\n"
            + _table(["question", "stage", "attempts", "error"], rows))


def _config_md(config: dict[str, Any]) -> str:
    if not config:
        return ""
    return "## Config\n\n" + _table(["key", "value"], [[k, f"`{v}`"] for k, v in config.items()])


def _interval(ci: list[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"{100 * ci[0]:.2f}–{100 * ci[1]:.2f}"


def _point(mean: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(_cell(x) for x in line) + " |" for line in lines)


def _cell(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")
