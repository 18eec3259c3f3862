"""Fuzzing: every reader of user data, and the HTTP API, given damaged input either works or
refuses in the project's one-line located error, leaves nothing behind, and (the server) keeps
serving. A few hundred inputs per reader here (derandomized: the same inputs every run);
`benchmarks/fuzz.py` runs the long campaign. The property itself is
`bestofn.testing.fuzzing.check`."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bestofn.testing.fuzz_inputs import READERS
from bestofn.testing.fuzzing import Crash, check, clean_refusal, fuzz_one
from bestofn.testing.fuzzing_http import http_target

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_works_or_refuses_cleanly(name, capsys):
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(st.randoms(use_true_random=False))
    def one(r: random.Random) -> None:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
        try:
            outcomes[fuzz_one(READERS[name], r, folder)] += 1
        finally:
            shutil.rmtree(folder)

    one()
    capsys.readouterr()  # warnings about gold answers outside the options
    # both sides of the property are exercised: valid inputs work, damaged ones are refused
    assert min(outcomes["ok"], outcomes["refused"]) >= EXAMPLES // 40, outcomes


def test_http_api_answers_or_refuses_naming_the_field(tmp_path):
    outcomes: Counter[str] = Counter()
    with http_target(tmp_path) as send:
        @FUZZ
        @given(st.randoms(use_true_random=False))
        def one(r: random.Random) -> None:
            outcomes[send(r)] += 1

        one()
    assert min(outcomes["ok"], outcomes["refused"]) >= EXAMPLES // 40, outcomes


def test_the_property_tells_a_crash_from_a_clean_refusal(tmp_path):
    """The checker itself: a located one-line error passes; a traceback-worthy error, an
    error about another file, a message on two lines and a file left behind do not."""
    from bestofn.text.files import InputError

    path = tmp_path / "in.jsonl"
    path.write_text("x")

    def refuse(e: Exception):
        def read():
            raise e
        return read

    assert check(refuse(InputError(path, "line 3", "solutions", "missing")), path,
                 tmp_path) == "refused"
    assert check(lambda: None, path, tmp_path) == "ok"
    for bad in (KeyError("text"), TypeError("unhashable"), ValueError(f"{path}: bad"),
                InputError(tmp_path / "other" / "f.jsonl", "line 1", "x", "y")):
        with pytest.raises(Crash):
            check(refuse(bad), path, tmp_path)
    two_lines = InputError(path, "line 1", "x", "y")
    two_lines.args = (str(two_lines) + "\nmore",)
    assert not clean_refusal(two_lines, path)
    assert "\\n" in str(InputError(path, "question a\nb", "x", "y")), "line breaks escaped"
    with pytest.raises(Crash, match="files left"):
        check(lambda: (tmp_path / "partial.jsonl").write_text(""), path, tmp_path)
