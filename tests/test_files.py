"""Reading Med-PRM files and the project's JSONL; errors that name file, record and field."""

from __future__ import annotations

import gzip
import json

import pytest

from bestofn.text.files import (
    InputError,
    complete_lines,
    json_objects,
    load_json,
    read_items,
    resume_lines,
    write_items,
)
from bestofn.text.records import Item, Question, Solution, StepScores


def medprm_record(qid="q1", **over):
    rec = {"question_id": qid, "data_source": "medqa",
           "question": "A man has a cough.\n\n(A) flu\n(B) cold", "correct_answer": "B",
           "related_docs": ["doc 1", "doc 2"],
           "solutions": [{"solution": "Step 1: x\nStep 2: the answer is (B)",
                          "prm_processed_solution": "Step 1: x ки Step 2: the answer is (B) ки",
                          "orm_processed_solution": "o", "answer": "B", "score": 1}]}
    rec.update(over)
    return rec


def test_medprm_round_trip_keeps_unknown_fields(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([medprm_record(extra_field=3)]))
    [item] = read_items(path)
    q = item.question
    assert q.options == {"A": "flu", "B": "cold"} and q.options_in_stem
    assert q.text() == "A man has a cough.\n\n(A) flu\n(B) cold"
    assert [d.text for d in q.documents] == ["doc 1", "doc 2"]
    assert item.solutions[0].marked.endswith(" ки") and item.solutions[0].answer == "B"
    item.prm = [StepScores((0.9, 0.4))]
    out = tmp_path / "out.json"
    write_items(out, [item])
    rec = json.loads(out.read_text())[0]
    assert rec["extra_field"] == 3
    sol = rec["solutions"][0]
    assert sol["PRM_min_score"] == 0.4 and sol["PRM_score"] == 0.4
    assert sol["PRM_score_list"] == [0.9, 0.4] and sol["orm_processed_solution"] == "o"
    [again] = read_items(out)
    assert again.prm == [StepScores((0.9, 0.4))]


def test_unscored_is_written_as_null_with_a_reason(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([medprm_record()]))
    [item] = read_items(path)
    item.prm = [StepScores.unscored("no step marker in the solution")]
    write_items(tmp_path / "o.json", [item])
    sol = json.loads((tmp_path / "o.json").read_text())[0]["solutions"][0]
    assert sol["PRM_min_score"] is None and sol["PRM_reason"].startswith("no step marker")


@pytest.mark.parametrize("record, field", [
    ({"question_id": "7", "solutions": []}, "question"),
    (medprm_record("7", solutions=[]), "solutions"),
    (medprm_record("7", solutions=[{"answer": "B"}]), "solutions[0].solution"),
    (medprm_record("7", solutions=[{"solution": "   "}]), "solutions[0].solution"),
    (medprm_record("7", options=3), "options"),
])
def test_bad_records_name_the_record_and_field(tmp_path, record, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([medprm_record("ok"), record]))
    with pytest.raises(InputError) as e:
        read_items(path)
    msg = str(e.value)
    assert str(path) in msg and "record 1" in msg and f"'{field}'" in msg
    if "question_id" in record:
        assert "question_id=7" in msg


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"question": "x",\n "solutions": [}]')
    with pytest.raises(InputError, match=r"bad.json: line 2 column \d+"):
        read_items(path)
    jl = tmp_path / "bad.jsonl"
    jl.write_text(json.dumps(medprm_record()) + "\n{oops\n")
    with pytest.raises(InputError, match=r"bad.jsonl: line 2: field '\(line\)': malformed"):
        read_items(jl)


def test_jsonl_round_trip_and_plain_string_solutions(tmp_path):
    item = Item(Question("1", "Q", {"A": "a", "B": "b"}, answer="A"),
                [Solution.from_text("Step 1: so the answer is (A)", {"A": "a", "B": "b"})],
                prm=[StepScores((0.5,))])
    write_items(tmp_path / "x.jsonl", [item])
    assert read_items(tmp_path / "x.jsonl") == [item]
    simple = {"question_id": "2", "question": "Q", "options": ["a", "b"], "correct_answer": "B",
              "solutions": ["Step 1: hmm\nStep 2: the answer is (B)"]}
    (tmp_path / "s.jsonl").write_text(json.dumps(simple) + "\n")
    [it] = read_items(tmp_path / "s.jsonl")
    assert it.solutions[0].answer == "B" and it.solutions[0].marked.count(" ки") == 2


def test_resume_lines_cuts_a_torn_last_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    assert resume_lines(p) == [{"a": 1}, {"b": 2}]
    assert p.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_json_objects_reads_plain_and_gzip_and_names_the_bad_line(tmp_path):
    rows = [{"a": 1}, {"b": [2, 3]}]
    text = json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n"
    plain, packed = tmp_path / "r.jsonl", tmp_path / "r.jsonl.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    assert list(json_objects(plain)) == list(json_objects(packed)) == [(1, rows[0]), (3, rows[1])]
    for bad, problem in (("[1]", "expected a JSON object, got list"), ('{"a":', "malformed JSON")):
        plain.write_text(text + bad + "\n")
        with pytest.raises(InputError, match=f"r.jsonl: line 4: field '\\(line\\)': {problem}"):
            list(json_objects(plain))


def test_load_json_checks_the_top_level(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}')
    assert load_json(p, dict, "object") == {"a": 1}
    with pytest.raises(InputError, match="top level: field '\\(file\\)': expected a JSON list "
                                         "of things, got dict"):
        load_json(p, list, "list of things")
    p.write_text('[1,\n  2,,]')
    with pytest.raises(InputError, match=r"x.json: line 2 column \d+: field '\(file\)'"):
        load_json(p, list, "list")


def test_complete_lines_reads_without_cutting(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"a": 1}\n{"c": ')
    assert complete_lines(p)[0] == [{"a": 1}]
    assert p.read_text() == '{"a": 1}\n{"c": '


@pytest.mark.parametrize("block", ["(A) flu\n(B) cold", "A. flu\nB. cold", "A) flu\nB) cold",
                                   "A: flu\nB: cold"])
def test_files_and_the_server_read_option_lines_alike(tmp_path, block):
    """One option-line parser (`bestofn.text.option_lines`) for Med-PRM files and chat messages."""
    from bestofn.serve import parse_options

    path = tmp_path / "in.json"
    path.write_text(json.dumps([medprm_record(question=f"A man has a cough.\n\n{block}")]))
    [item] = read_items(path)
    assert item.question.options == {"A": "flu", "B": "cold"} and item.question.options_in_stem
    assert parse_options(f"A man has a cough.\n\n{block}") == ("A man has a cough.",
                                                               {"A": "flu", "B": "cold"})


def test_a_single_option_line_is_no_option_block(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([medprm_record(question="Which drug?\n\n(A) only one")]))
    [item] = read_items(path)
    assert item.question.options == {} and not item.question.options_in_stem
