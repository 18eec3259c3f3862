"""MIRAGE loaders: counts, answers among the options, sources, order, located errors."""

from __future__ import annotations

import json

import pytest

from bestofn.text.datasets import DATASETS, MIRAGE_COMPONENTS, load_mirage, load_questions
from bestofn.text.files import InputError

COUNTS = {"medqa": 1273, "medmcqa": 4183, "pubmedqa": 500, "bioasq": 618, "mmlu": 1089}
OPTIONS = {"medqa": "ABCD", "medmcqa": "ABCD", "pubmedqa": "ABC", "bioasq": "AB", "mmlu": "ABCD"}


@pytest.mark.parametrize("component", MIRAGE_COMPONENTS)
def test_each_component(component):
    qs = load_questions(f"mirage-{component}")
    assert len(qs) == COUNTS[component] and len({q.id for q in qs}) == len(qs)
    assert all(q.source == component for q in qs)
    assert all(set(q.options) == set(OPTIONS[component]) for q in qs)
    assert all(q.answer in q.options and q.stem.strip() for q in qs)
    assert [q.id for q in load_questions(f"mirage-{component}", limit=5)] == [q.id for q in qs[:5]]


def test_yes_no_options_and_file_order():
    pub = load_questions("mirage-pubmedqa", limit=1)[0]
    assert pub.options == {"A": "yes", "B": "no", "C": "maybe"}
    assert load_questions("mirage-bioasq", limit=1)[0].options == {"A": "yes", "B": "no"}
    assert [q.id for q in load_questions("mirage-medqa", limit=3)] == ["0000", "0001", "0002"]


def test_all_of_mirage_interleaved():
    qs = load_questions("mirage")
    assert len(qs) == sum(COUNTS.values()) == 7663 and len({q.id for q in qs}) == 7663
    assert [q.source for q in qs[:10]] == list(MIRAGE_COMPONENTS) * 2
    by_source = {c: [q.id for q in qs if q.source == c] for c in MIRAGE_COMPONENTS}
    sets = load_mirage()
    assert by_source == {c: [q.id for q in sets[c]] for c in MIRAGE_COMPONENTS}
    assert [q.id for q in load_questions("mirage", limit=7)] == [q.id for q in qs[:7]]
    assert load_questions("mirage") == qs


def test_dataset_names():
    assert {"medqa", "medqa5", "mirage", "mirage-mmlu"} <= set(DATASETS)
    with pytest.raises(FileNotFoundError, match="mirage-medqa"):
        load_questions("mirage-nope")


def test_mirage_format_file_and_errors(tmp_path):
    good = {"setA": {"1": {"question": "q?", "options": {"A": "yes", "B": "no"}, "answer": "B"}},
            "setB": {"2": {"question": "r?", "options": {"A": "x", "B": "y"}, "answer": "A"}}}
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(good))
    qs = load_questions(str(p))
    assert [(q.id, q.source, q.answer) for q in qs] == [("1", "setA", "B"), ("2", "setB", "A")]
    good["setB"]["2"]["answer"] = "C"
    p.write_text(json.dumps(good))
    with pytest.raises(InputError, match=r"bench.json: dataset setB question 2: field 'answer'"):
        load_questions(str(p))
    good["setB"] = {"1": good["setA"]["1"]}
    p.write_text(json.dumps(good))
    with pytest.raises(InputError, match="also used in dataset setA"):
        load_mirage(p)
    with pytest.raises(InputError, match="no such dataset"):
        load_mirage(p, components=("setC",))
