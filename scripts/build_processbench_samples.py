"""Build the bundled ProcessBench samples (`bestofn/data/processbench/`) from the full files.

Each subset's sample is `SAMPLE` records drawn without replacement by `random.Random(SEED)`
from the published file (QwenLM/ProcessBench `dataset/*.json`, in `../shared/data/processbench/`
when present), kept in the file's order and written unchanged (the same JSON objects, as a
JSON list). Deterministic: the same seed and source give the same files.

Run: python scripts/build_processbench_samples.py [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "processbench"
OUT = ROOT / "bestofn" / "data" / "processbench"
SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
SAMPLE = 100
SEED = 20241210


def sample(records: list[dict], k: int, seed: int) -> list[dict]:
    keep = sorted(random.Random(seed).sample(range(len(records)), k))
    return [records[i] for i in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in SUBSETS:
        records = json.loads((a.source / f"{name}.json").read_text(encoding="utf-8"))
        got = sample(records, SAMPLE, SEED)
        (OUT / f"{name}.json").write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n",
                                          encoding="utf-8")
        err = sum(r["label"] != -1 for r in got)
        print(f"{name}: {len(got)} of {len(records)} records ({err} erroneous, "
              f"{len(got) - err} correct)")


if __name__ == "__main__":
    main()
