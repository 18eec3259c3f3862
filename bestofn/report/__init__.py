"""The benchmark report of a run or a scored file, split where its ideas part: `build` (what
report.json says), `markdown` (report.md), `figures` (the curves' CSV and PNG), `viewer`
(report.html) and `write` (all of them into a folder)."""

from .write import write_report

__all__ = ["write_report"]
