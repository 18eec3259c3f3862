"""The Med-PRM paper's benchmark columns: questions grouped by `data_source`, with macro averages.

The published reporting script pools these `data_source` values per column (MMLU-Med pools the
six MMLU medical subsets) and averages the columns without weighting them by size. A column
with no question in the file is left out of the table and of the averages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

COLUMNS: dict[str, tuple[str, ...]] = {
    "MedQA-4": ("med_qa_4op",),
    "MedQA-5": ("med_qa",),
    "MedMCQA": ("medmc_qa", "medmcqa"),
    "MMLU-Med": ("mmlu_professional_medicine", "mmlu_clinical_knowledge", "mmlu_college_medicine",
                 "mmlu_college_biology", "mmlu_anatomy", "mmlu_medical_genetics"),
    "DDXPlus": ("ddxplus",),
    "NEJM": ("nejm",),
    "OSCE": ("osce",),
    "PubMedQA": ("pubmed_qa", "pubmedqa"),
}
"""Benchmark column → the `data_source` values that fill it."""

AVERAGES: dict[str, tuple[str, ...]] = {
    "MedQA average": ("MedQA-4", "MedQA-5"),
    "Average": tuple(COLUMNS),
}
"""Macro averages: the unweighted mean of the columns present."""


def benchmark_table(sources: Sequence[str], methods: Sequence[str],
                    matrix: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per column: questions, correct counts and accuracy of each method; then the averages.

    `sources` and the rows of `matrix` (questions x methods, 0/1) are the graded questions in
    the same order. Empty when no question belongs to a column.
    """
    out: dict[str, dict[str, Any]] = {}
    for col, names in COLUMNS.items():
        rows = [i for i, s in enumerate(sources) if s in names]
        if rows:
            part = matrix[rows]
            out[col] = {"n_questions": len(rows),
                        "correct": {m: int(part[:, j].sum()) for j, m in enumerate(methods)},
                        "accuracy": {m: float(part[:, j].mean()) for j, m in enumerate(methods)}}
    if not out:
        return {}
    for name, cols in AVERAGES.items():
        present = [out[c] for c in cols if c in out]
        if present and (name == "Average" or len(present) == len(cols)):
            out[name] = {"n_questions": None, "columns": [c for c in cols if c in out],
                         "accuracy": {m: float(np.mean([p["accuracy"][m] for p in present]))
                                      for m in methods}}
    return out


def benchmark_markdown(table: dict[str, dict[str, Any]], methods: Sequence[str],
                       labels: dict[str, str]) -> str:
    """The table in percent, one row per column and average."""
    if not table:
        return ""
    head = "| benchmark | questions | " + " | ".join(labels.get(m, m) for m in methods) + " |"
    lines = ["## Benchmark columns (Med-PRM grouping by data_source)", "", head,
             "|---|---:|" + "---:|" * len(methods)]
    for name, row in table.items():
        n = "-" if row["n_questions"] is None else str(row["n_questions"])
        cells = " | ".join(f"{100 * row['accuracy'][m]:.2f}" for m in methods)
        lines.append(f"| {name} | {n} | {cells} |")
    return "\n".join(lines)
