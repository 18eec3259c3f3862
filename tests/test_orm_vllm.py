"""The vLLM ORM backend (pooling runner, classify) against the transformers backend, with and
without a LoRA adapter whose classification head is saved through `modules_to_save`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bestofn.scorers.batch import Request
from bestofn.scorers.orm_hf import HFORMScorer
from bestofn.testing.orm import build_tiny_lora, build_tiny_orm
from bestofn.testing.samples import QUESTION, random_solution
from bestofn.text.records import Solution

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = build_tiny_orm(tmp_path_factory.mktemp("vllm_orm"))
    return base, build_tiny_lora(base, tmp_path_factory.mktemp("vllm_orm_lora"))


@pytest.fixture(scope="module")
def engine(models):
    """One engine with LoRA enabled; `lora_request = None` scores the base model and
    `adapted` is the adapter's request."""
    from bestofn.scorers import make_scorer

    base, lora = models
    scorer = make_scorer("orm-vllm", model=str(base), adapter=str(lora), device="cpu",
                         max_len=256)
    scorer.adapted = scorer.lora_request
    yield scorer
    scorer.llm.llm_engine.engine_core.shutdown()  # while pytest's log streams are open
    del scorer.llm


@pytest.fixture(scope="module")
def solutions():
    rng = random.Random(4)
    too_long = Solution.from_text("fever " * 300 + "the answer is (A).")
    return [random_solution(rng) for _ in range(8)] + [too_long]


@pytest.mark.parametrize("with_adapter", [False, True])
def test_vllm_scores_equal_transformers(engine, models, solutions, with_adapter):
    base, lora = models
    engine.lora_request = engine.adapted if with_adapter else None
    hf = HFORMScorer(str(base), device="cpu", max_len=256,
                     adapter=str(lora) if with_adapter else None)
    [want] = hf.score_batch([Request(QUESTION, solutions)]).results
    [got] = engine.score_batch([Request(QUESTION, solutions)]).results
    assert got[-1].score is None and "over the maximum length 256" in got[-1].reason
    assert [r.reason for r in got] == [r.reason for r in want]
    pairs = [(g.score, w.score) for g, w in zip(got, want, strict=True) if w.score is not None]
    assert len(pairs) == 8
    assert max(abs(g - w) for g, w in pairs) < 1e-4
    assert max(w for _, w in pairs) - min(w for _, w in pairs) > 0.5


def test_adapter_changes_vllm_scores(engine, models, solutions):
    engine.lora_request = None
    plain = engine.score(QUESTION, None, solutions[:8])
    engine.lora_request = engine.adapted
    adapted = engine.score(QUESTION, None, solutions[:8])
    assert min(abs(a - b) for a, b in zip(plain, adapted, strict=True)) > 1e-3


def test_an_adapter_listing_heads_it_lacks_is_narrowed_for_vllm(models, tmp_path):
    """PEFT 0.22 lists `pre_classifier` (and `classifier`) for a Llama, whose head is `score`;
    vLLM refuses names it does not know, so it gets a view listing the heads the weights hold."""
    import json
    import shutil

    from bestofn.scorers.orm_vllm import AdapterView

    _, lora = models
    copy = tmp_path / "adapter"
    shutil.copytree(lora, copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["modules_to_save"] = ["classifier", "score", "pre_classifier"]
    (copy / "adapter_config.json").write_text(json.dumps(config))
    view = AdapterView(str(copy))
    assert view.path != str(copy)
    narrowed = json.loads((Path(view.path) / "adapter_config.json").read_text())
    assert narrowed["modules_to_save"] == ["score"]
    assert {p.name for p in Path(view.path).iterdir()} == {p.name for p in copy.iterdir()}
    config["modules_to_save"] = ["score"]
    (copy / "adapter_config.json").write_text(json.dumps(config))
    assert AdapterView(str(copy)).path == str(copy)
