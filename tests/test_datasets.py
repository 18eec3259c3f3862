from __future__ import annotations

import json

import pytest

from bestofn.text.datasets import load_questions
from bestofn.text.files import InputError


def test_bundled_medqa():
    qs = load_questions("medqa")
    assert len(qs) == 1273 and len({q.id for q in qs}) == 1273
    assert all(set(q.options) == set("ABCD") and q.answer in q.options for q in qs)
    five = load_questions("medqa5", limit=3)
    assert len(five) == 3 and set(five[0].options) == set("ABCDE")


def test_bad_question_file_names_line_and_field(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text(json.dumps({"question": "x", "options": {"A": "a"}, "answer_idx": "A"}) + "\n"
                 + json.dumps({"question": "y", "options": {"A": "a"}, "answer_idx": "Z"}) + "\n")
    with pytest.raises(InputError, match=r"q.jsonl: line 2: field 'answer_idx'"):
        load_questions(str(p))
    with pytest.raises(FileNotFoundError, match="bundled datasets"):
        load_questions(str(tmp_path / "missing.jsonl"))
