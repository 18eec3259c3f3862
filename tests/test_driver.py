"""The run driver on a plain execution (no engine): results in question order, resume."""

from __future__ import annotations

import json
import random

from bestofn.console import Console
from bestofn.execution.driver import RESULTS_FILE, Executor, drive
from bestofn.testing.samples import mcq, random_solution
from bestofn.text.records import Item


def test_results_end_in_question_order_whatever_order_questions_finish(tmp_path):
    rng = random.Random(3)
    questions = [mcq(f"q{i}") for i in range(6)]
    items = {q.id: Item(q, [random_solution(rng) for _ in range(2)]) for q in questions}
    finish = [q.id for q in questions]
    rng.shuffle(finish)

    def outcomes(qs):
        ids = {q.id for q in qs}
        return iter([items[i] for i in finish if i in ids])

    console = Console()
    path = tmp_path / RESULTS_FILE
    drive(questions[:4], tmp_path, lambda: Executor(outcomes), 1, console, progress=False)
    first = path.read_text().splitlines()
    assert [json.loads(x)["question"]["id"] for x in first] == ["q0", "q1", "q2", "q3"]
    assert [Item.from_dict(json.loads(x)) for x in first] == [items[f"q{i}"] for i in range(4)]

    # a later session (more questions) appends what it finishes, then the file is in order
    got = drive(questions, tmp_path, lambda: Executor(outcomes), 1, console, progress=False)
    assert got.resumed == 4
    lines = path.read_text().splitlines()
    assert lines[:4] == first
    assert [json.loads(x)["question"]["id"] for x in lines] == [q.id for q in questions]
