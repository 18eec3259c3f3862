"""The human-readable and machine-readable report of a run or a scored file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import evaluate, format_table
from .files import atomic_write_text
from .records import Item


def write_report(out_dir: Path, items: Sequence[Item], config: dict[str, Any], *,
                 seed: int = 0, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`report.json` (numbers under stable keys) and `report.md` (the table) in `out_dir`."""
    ev = evaluate(items, seed=seed)
    data = {"accuracy": ev.accuracy, **{k: v for k, v in ev.to_json().items()
                                         if k not in ev.accuracy},
            "config": config, **(extra or {})}
    atomic_write_text(out_dir / "report.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out_dir / "report.md", _markdown(ev, config, extra or {}))
    return data


def _markdown(ev: Any, config: dict[str, Any], extra: dict[str, Any]) -> str:
    settings = "\n".join(f"| {k} | `{v}` |" for k, v in config.items())
    notes = "\n".join(f"- {k}: {v}" for k, v in extra.items())
    return (f"# bestofn report\n\n```\n{format_table(ev)}\n```\n\n"
            f"## Settings\n\n| setting | value |\n|---|---|\n{settings}\n\n{notes}\n")
