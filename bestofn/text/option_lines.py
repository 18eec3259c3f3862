"""The one option-line parser: a question text whose last lines are its options.

Option lines are `(A) text`, `A. text`, `A) text` or `A: text`, at least two, lettered in
order from A (the way `Question.text()` and the bundled datasets render them). Used by the
file reader (a Med-PRM question with its options in the text) and by the server (a chat
message).
"""

from __future__ import annotations

import re
import string

OPTION_LINE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.):])\s+(\S.*?)\s*$")
"""One option line: `(A) text`, `A. text`, `A) text` or `A: text`."""


def split_options(text: str) -> tuple[str, dict[str, str]]:
    """(stem, options) from a question whose last lines are options A, B, … (at least two);
    a text without such a block is an open question: (text stripped, {})."""
    lines = text.rstrip().splitlines()
    found: list[tuple[str, str]] = []
    i = len(lines)
    while i > 0:
        m = OPTION_LINE.match(lines[i - 1])
        if not m:
            break
        found.insert(0, (m.group(1) or m.group(2), m.group(3)))
        i -= 1
    letters = [k for k, _ in found]
    if len(found) < 2 or letters != list(string.ascii_uppercase[:len(found)]):
        return text.strip(), {}
    return "\n".join(lines[:i]).strip(), dict(found)
