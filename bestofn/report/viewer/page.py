"""report.html: one self-contained file (no network: data, script and style inline).

The data goes in as gzip + base64 (`encode`), which the page decodes with the browser's
`DecompressionStream`: the index once on load, a question's record when it is opened (one
`<script type="application/octet-stream">` per question). Base64 has no `<`, so no text in
the data can close its element; the page puts every string into the document as text, never
as HTML, and its Content-Security-Policy allows only its own script (by hash), so an
injected handler or script would not run either.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...evaluation.select import STRICT, SelectionRules
from ...text.files import atomic_write_text
from ...text.records import Item
from .data import all_picks, index, question

HTML_FILE = "report.html"
ASSETS = Path(__file__).parent / "assets"
CSP = ("default-src 'none'; script-src '{hash}'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def encode(obj: Any) -> str:
    """Compact JSON, gzipped (no timestamp: the same data gives the same bytes), base64."""
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return base64.b64encode(gzip.compress(raw.encode("utf-8"), 6, mtime=0)).decode("ascii")


def decode(text: str) -> Any:
    """`encode`'s inverse (the page does the same in the browser)."""
    return json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))


def render(items: Sequence[Item], data: dict[str, Any], *, seed: int = 0,
           rules: SelectionRules = STRICT, title: str = "bestofn report") -> str:
    """The page's text for these items and report.json's content `data`."""
    picks = all_picks(items, seed, rules)
    idx = index(items, data, picks, rules)
    chunks = [f'<script type="application/octet-stream" id="q{i}">'
              f"{encode(question(it, sel, idx['methods'], data, rules))}</script>"
              for i, (it, sel) in enumerate(zip(items, picks, strict=True))]
    script = (ASSETS / "report.js").read_text()
    assert "</script" not in script.lower(), "the page script must not close its element"
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    parts = {"TITLE": html.escape(title), "CSP": CSP.format(hash=f"sha256-{digest}"),
             "STYLE": (ASSETS / "report.css").read_text(), "SCRIPT": script,
             "INDEX": encode(idx), "QUESTIONS": "\n".join(chunks)}
    template = (ASSETS / "report.html").read_text()
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], template)


def write_html(out_dir: Path, items: Sequence[Item], data: dict[str, Any], *, seed: int = 0,
               rules: SelectionRules = STRICT) -> Path:
    """Write `out_dir/report.html` and return its path."""
    path = Path(out_dir) / HTML_FILE
    name = (data.get("settings") or {}).get("dataset") or Path(out_dir).resolve().name
    atomic_write_text(path, render(items, data, seed=seed, rules=rules,
                                   title=f"bestofn report: {name}"))
    return path


def embedded(page: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The index and the question records a page embeds (for tests and tools)."""
    idx = decode(re.search(r'<script type="application/octet-stream" id="index">([^<]*)<',
                           page).group(1))  # type: ignore[union-attr]
    found = dict(re.findall(r'<script type="application/octet-stream" id="q(\d+)">([^<]*)<',
                            page))
    return idx, [decode(found[str(i)]) for i in range(len(found))]
