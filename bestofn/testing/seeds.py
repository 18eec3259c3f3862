"""Seeds of a test's random choices (where to kill a run), printed so a failure reproduces."""

from __future__ import annotations

import os
import random

SEED_ENV = "BESTOFN_TEST_SEED"


def seeded_rng(what: str) -> random.Random:
    """A generator for `what`, seeded from $BESTOFN_TEST_SEED when set, else from a fresh
    seed; the seed is printed (pytest shows it with a failure): rerun with
    `BESTOFN_TEST_SEED=<seed>` to repeat the same choices."""
    env = os.environ.get(SEED_ENV)
    seed = int(env) if env else random.SystemRandom().randrange(2**31)
    print(f"{what}: seed {seed} (reproduce with {SEED_ENV}={seed})")
    return random.Random(seed)
