"""Comparing two runs' outputs where only their timing may differ."""

from __future__ import annotations

from pathlib import Path


def report_without_timing(path: str | Path, *, compute: bool = True) -> dict:
    """A run's report.json with what differs between two runs of the same results left out:
    the stage seconds of `compute` (and, with `compute=False`, the whole object: a resumed
    streaming run has thrown away different work than an uninterrupted one)."""
    import json

    return strip_timing(json.loads(Path(path).read_text()), compute=compute)


def strip_timing(data: dict, *, compute: bool = True) -> dict:
    """`report_without_timing` on report.json's content."""
    data = dict(data)
    if not compute:
        data.pop("compute", None)
    elif "compute" in data:
        data["compute"] = {k: v for k, v in data["compute"].items() if not k.endswith("_s")}
    return data


def without_compute(record: dict) -> dict:
    """A results.jsonl record without its `compute` and its search log's PRM token count (how
    a question's verifier tokens are shared depends on which questions were scored together
    and on what a prefix cache held)."""
    out = {k: v for k, v in record.items() if k != "compute"}
    if isinstance(out.get("search"), dict):
        out["search"] = {k: v for k, v in out["search"].items() if k != "prm_tokens_computed"}
    return out
