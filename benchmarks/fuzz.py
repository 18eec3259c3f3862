"""The long fuzzing campaign: many damaged inputs through every reader of user data and the
HTTP API of `bestofn serve`, counting inputs that worked, were refused cleanly, and crashed.

The property is `bestofn.testing.fuzzing.check` (readers) and
`bestofn.testing.fuzzing_http.check_response`
(HTTP): an input works, or ends in the project's one-line error naming the file, line and field
(a 4xx naming the field over HTTP), nothing is left behind, and the server keeps serving.
Input k of a reader comes from `random.Random(seed + k)`, so a crash is reproduced by its seed
(printed with the first crashes of each reader).

  python benchmarks/fuzz.py                          # 10,000 inputs per reader
  python benchmarks/fuzz.py --inputs 500 --only http,manifest
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

from bestofn.testing.fuzz_inputs import READERS
from bestofn.testing.fuzzing import Crash, fuzz_one
from bestofn.testing.fuzzing_http import http_target


def campaign(name: str, one: Callable[[random.Random], str], inputs: int,
             seed: int) -> tuple[Counter[str], list[str], float]:
    counts: Counter[str] = Counter()
    crashes: list[str] = []
    t0 = time.perf_counter()
    for k in range(inputs):
        try:
            with redirect_stderr(StringIO()):  # warnings (gold answers outside the options)
                counts[one(random.Random(seed + k))] += 1
        except Crash as e:
            counts["crash"] += 1
            if len(crashes) < 5:
                crashes.append(f"  {name} seed {seed + k}: {str(e)[:300]}")
    return counts, crashes, time.perf_counter() - t0


def file_reader(reader) -> Callable[[random.Random], str]:  # noqa: ANN001
    def one(r: random.Random) -> str:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
        try:
            return fuzz_one(reader, r, folder)
        finally:
            shutil.rmtree(folder)

    return one


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10_000, help="inputs per reader")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first input")
    ap.add_argument("--only", default="", help="comma-separated parts of reader names")
    a = ap.parse_args()
    wanted = [w for w in a.only.split(",") if w]
    rows, found = [], []
    targets = {name: file_reader(r) for name, r in READERS.items()}
    print(f"{'reader':<22} {'inputs':>7} {'worked':>7} {'refused':>8} {'crashes':>8} "
          f"{'seconds':>8}", flush=True)

    def report(name: str, one: Callable[[random.Random], str]) -> None:
        counts, crashes, secs = campaign(name, one, a.inputs, a.seed)
        rows.append(counts["crash"])
        found.extend(crashes)
        print(f"{name:<22} {sum(counts.values()):>7} {counts['ok']:>7} {counts['refused']:>8} "
              f"{counts['crash']:>8} {secs:>8.1f}", flush=True)

    for name, one in targets.items():
        if not wanted or any(w in name for w in wanted):
            report(name, one)
    if not wanted or any(w in "HTTP API" or w == "http" for w in wanted):
        with tempfile.TemporaryDirectory() as tmp, http_target(Path(tmp)) as send:
            report("HTTP API", send)
    print(f"total crashes: {sum(rows)}")
    for line in found:
        print(line)
    return 1 if sum(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
