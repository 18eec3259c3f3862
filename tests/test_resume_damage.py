"""Resume after damage: a run folder whose results.jsonl or rounds.jsonl ends in a line cut
mid-write (the machine lost power) resumes, dropping and redoing only that question; a line
that is not the run's own (edited by hand, or another run's) is refused with its line number
and the file is left as it was. A question whose engine call fails is recorded and the run
goes on; a resume once the input is fixed completes it. An engine that dies as a whole stops
the run in one line, and the same command resumes it. Stored samples (the replay backend)
and majority vote keep it fast: no model is loaded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bestofn.cli import main
from bestofn.execution import STREAMS
from bestofn.execution.ordered_stream import OrderedStream
from bestofn.testing.fuzzing import assert_one_line_error
from bestofn.testing.reports import strip_timing, without_compute
from bestofn.testing.seeds import seeded_rng
from bestofn.text.datasets import load_questions
from bestofn.text.records import Item, Solution
from policies import POLICIES
from policies.replay import ReplayPolicy

Q, N = 4, 6


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """N written solutions for the first Q MedQA questions (answers skewed so that some
    questions settle early under an adaptive rule)."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("stored") / "solutions.jsonl"
    lines = []
    for q in load_questions("medqa", limit=Q):
        weights = rng.choice([(9, 1), (1, 1)])
        sols = [Solution.from_text(f"Step 1: think {j}.\nThe answer is "
                                   f"({rng.choices('AB', weights)[0]}).", q.options)
                for j in range(N)]
        lines.append(json.dumps(Item(q, sols).to_dict()))
    path.write_text("\n".join(lines) + "\n")
    return path


def argv(out: Path, stored: Path, *extra: str) -> list[str]:
    return ["run", "--out", str(out), "--questions", str(Q), "-n", str(N), "--policy",
            str(stored), "--policy-backend", "replay", "--prm", "none", "--no-ray", *extra]


def by_id(path: Path) -> dict[str, dict]:
    return {d["question"]["id"]: d for d in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, stored):
    """A finished run, fixed N and adaptive: (folder, results by question, report)."""
    out = {}
    for kind, extra in (("fixed", ()), ("streamed", ("--adaptive", "esc:w=2"))):
        folder = tmp_path_factory.mktemp(kind) / "run"
        assert main(argv(folder, stored, *extra)) == 0
        out[kind] = (folder, extra, by_id(folder / "results.jsonl"),
                     json.loads((folder / "report.json").read_text()))
    return out


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("config.json", "results.jsonl", "rounds.jsonl"):
        if (src / name).exists():
            (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_a_results_line_cut_mid_write_is_redone_alone(tmp_path, stored, reference, capfd):
    src, extra, results, report = reference["fixed"]
    run = copy_run(src, tmp_path / "run")
    lines = (run / "results.jsonl").read_bytes().split(b"\n")[:Q]
    cut = lines[-1][: len(lines[-1]) // 2]
    (run / "results.jsonl").write_bytes(b"\n".join(lines[:-1]) + b"\n" + cut)
    capfd.readouterr()
    assert main(argv(run, stored, *extra)) == 0
    assert f"{Q - 1} resumed" in capfd.readouterr().out, "only the cut question is redone"
    assert by_id(run / "results.jsonl") == results
    assert strip_timing(json.loads((run / "report.json").read_text())) == strip_timing(report)


def test_a_rounds_line_cut_mid_write_is_redone_alone(tmp_path, stored, reference, capfd):
    """Power lost while a sample of a streamed adaptive run was written: the results of
    questions that settled before are kept, the cut line is drawn again, and the run ends as
    the uninterrupted one."""
    src, extra, results, report = reference["streamed"]
    rounds = (src / "rounds.jsonl").read_bytes().split(b"\n")[:-1]
    assert len(rounds) >= 3
    k = len(rounds) - 1
    run = copy_run(src, tmp_path / "run")
    (run / "rounds.jsonl").write_bytes(b"".join(x + b"\n" for x in rounds[:k])
                                       + rounds[k][:40])
    cut_id = json.loads(rounds[k])["question"]
    kept = {q: d for q, d in results.items() if q != cut_id}
    (run / "results.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept.values()))
    capfd.readouterr()
    assert main(argv(run, stored, *extra)) == 0
    assert f"{Q - 1} resumed" in capfd.readouterr().out
    # a streamed run's compute says what each session threw away, which the cut changes
    assert {q: without_compute(d) for q, d in by_id(run / "results.jsonl").items()} == {
        q: without_compute(d) for q, d in results.items()}
    assert strip_timing(json.loads((run / "report.json").read_text()), compute=False
                        ) == strip_timing(report, compute=False)


def edit(line: dict, how: str) -> dict:
    if how == "unknown question":
        return {**line, "question": {**line["question"], "id": "not-this-run"}}
    if how == "wrong shape":
        return {"question": line["question"], "solutions": "three of them"}
    return {**line, "prm": [{"probs": [], "reason": None}] * len(line["solutions"])}


@pytest.mark.parametrize("how, field", [("unknown question", "question.id"),
                                        ("wrong shape", "solutions"),
                                        ("impossible scores", "prm[0]")])
def test_a_results_line_edited_by_hand_is_refused_with_its_number(tmp_path, stored, reference,
                                                                  capsys, how, field):
    src, extra, _, _ = reference["fixed"]
    run = copy_run(src, tmp_path / "run")
    lines = (run / "results.jsonl").read_text().splitlines()
    lines[1] = json.dumps(edit(json.loads(lines[1]), how))
    text = "\n".join(lines) + "\n"
    (run / "results.jsonl").write_text(text)
    capsys.readouterr()
    assert main(argv(run, stored, *extra)) == 2
    assert_one_line_error(capsys.readouterr().err, f"{run / 'results.jsonl'}: line 2",
                          f"field '{field}'")
    assert (run / "results.jsonl").read_text() == text, "a refused file is left as it was"


def test_a_cut_line_before_the_last_is_refused_not_dropped(tmp_path, stored, reference,
                                                           capsys):
    """Lines are appended one at a time, so only the last can be cut by a crash; a broken
    line in the middle was edited, and dropping it (with all after it) would lose work."""
    src, extra, _, _ = reference["fixed"]
    run = copy_run(src, tmp_path / "run")
    lines = (run / "results.jsonl").read_text().splitlines()
    lines[1] = lines[1][:30]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(argv(run, stored, *extra)) == 2
    assert_one_line_error(capsys.readouterr().err, "results.jsonl: line 2", "malformed JSON")


@pytest.mark.parametrize("how, field", [("start", "start"), ("question", "question"),
                                        ("orm", "orm")])
def test_a_rounds_line_edited_by_hand_is_refused(tmp_path, stored, reference, capsys, how,
                                                 field):
    src, extra, _, _ = reference["streamed"]
    run = copy_run(src, tmp_path / "run")
    (run / "results.jsonl").write_text("")
    lines = (run / "rounds.jsonl").read_text().splitlines()
    d = json.loads(lines[0])
    d[how] = {"start": 10**6, "question": "q-elsewhere", "orm": [0.5] * len(d["solutions"])}[how]
    lines[0] = json.dumps(d)
    (run / "rounds.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(argv(run, stored, *extra)) == 2
    assert_one_line_error(capsys.readouterr().err, f"{run / 'rounds.jsonl'}: line 1",
                          f"field '{field}'")


def test_an_edited_config_is_refused_naming_the_file(tmp_path, stored, reference, capsys):
    src, extra, _, _ = reference["fixed"]
    run = copy_run(src, tmp_path / "run")
    (run / "config.json").write_text("[1, 2]")
    assert main(argv(run, stored, *extra)) == 2
    assert_one_line_error(capsys.readouterr().err, str(run / "config.json"), "top level")


@pytest.mark.parametrize("kind", ["fixed", "streamed"])
def test_a_question_that_fails_is_recorded_and_a_resume_after_the_fix_completes(
        tmp_path, stored, reference, capfd, kind):
    """The solutions file lacks one question, so the replay policy raises for it (a real
    engine error, in this process): it is tried `--max-attempts` times and recorded in
    failures.jsonl, the other questions land, and once the file is whole a resume runs that
    question alone and ends with an uninterrupted run's report."""
    _, extra, results, _ = reference[kind]
    lines = stored.read_text().splitlines()
    lacking = json.loads(lines[1])["question"]["id"]
    solutions = tmp_path / "solutions.jsonl"
    solutions.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    run = tmp_path / "run"
    assert main(argv(run, solutions, *extra, "--max-attempts", "2")) == 0
    assert f"({Q - 1} questions, 0 resumed, 1 failed" in capfd.readouterr().out
    [fail] = [json.loads(x) for x in (run / "failures.jsonl").read_text().splitlines()]
    assert (fail["question_id"], fail["stage"], fail["attempts"]) == (lacking, "solve", 2)
    assert fail["error"].startswith("MissingQuestion: ") and "no solutions for question" in \
        fail["error"]
    got = by_id(run / "results.jsonl")
    same = (lambda d: d) if kind != "streamed" else without_compute
    assert {q: same(d) for q, d in got.items()} == {q: same(d) for q, d in results.items()
                                                    if q != lacking}
    assert json.loads((run / "report.json").read_text())["n_questions"] == Q - 1

    solutions.write_text(stored.read_text())  # the fix
    assert main(argv(run, solutions, *extra)) == 0
    assert f"({Q} questions, {Q - 1} resumed, 0 failed" in capfd.readouterr().out
    assert (run / "failures.jsonl").read_text() == ""
    whole = tmp_path / "whole"
    assert main(argv(whole, solutions, *extra)) == 0
    assert {q: same(d) for q, d in by_id(run / "results.jsonl").items()} == {
        q: same(d) for q, d in by_id(whole / "results.jsonl").items()}
    assert strip_timing(json.loads((run / "report.json").read_text()),
                        compute=kind != "streamed") == strip_timing(
        json.loads((whole / "report.json").read_text()), compute=kind != "streamed")


class _DyingStream(OrderedStream):
    """The replay policy's ordered stream, one question's samples per poll, whose engine dies
    on a chosen poll (not one question's error: the whole stream raises)."""

    die_at = 0
    polls = 0

    def poll(self, timeout: float):
        type(self).polls += 1
        if type(self).polls == type(self).die_at:
            raise OSError("engine process gone")
        return super().poll(0.0)


class _DyingReplay(ReplayPolicy):
    backend = "dying-replay"


@pytest.fixture
def dying():
    POLICIES.register("dying-replay", _DyingReplay)
    STREAMS.register("dying-replay", _DyingStream)
    yield _DyingStream
    POLICIES._entries.pop("dying-replay", None)
    STREAMS._entries.pop("dying-replay", None)


@pytest.mark.parametrize("kind", ["fixed", "streamed"])
def test_an_engine_that_dies_stops_the_run_in_one_line_and_the_same_command_resumes(
        tmp_path, stored, reference, capsys, dying, kind):
    _, extra, results, report = reference[kind]
    dying.polls, dying.die_at = 0, 1 + seeded_rng("engine death").randrange(Q)
    out = tmp_path / "run"
    args = [a if a != "replay" else "dying-replay"
            for a in argv(out, stored, *extra, "--valid-steps", "off")]
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, "policy engine (_DyingStream) failed: OSError: engine process "
                          "gone", f"kept in {out}: the same command resumes the run")
    dying.die_at = 0
    assert main(args) == 0
    assert {q: without_compute(d) for q, d in by_id(out / "results.jsonl").items()} == {
        q: without_compute(d) for q, d in results.items()}
    got = strip_timing(json.loads((out / "report.json").read_text()), compute=False)
    want = strip_timing(report, compute=False)
    assert {k: v for k, v in got.items() if k != "config"} == {
        k: v for k, v in want.items() if k != "config"}  # the backend's name differs
