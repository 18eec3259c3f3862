"""The nested run configuration: each setting in one object, config.json flat and complete,
older run folders resuming."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bestofn.config import (
    RECORD,
    EngineOptions,
    JudgeConfig,
    PolicyConfig,
    PRMConfig,
    RunConfig,
    StrategyConfig,
    VerifierConfig,
    default_of,
)
from bestofn.run import ConfigMismatch, check_run_dir

OLD_KEYS = ["dataset", "questions", "n", "policy", "policy_backend", "preset", "lora",
            "min_steps", "max_steps", "prm", "prm_backend", "orm", "orm_backend", "orm_adapter",
            "use_docs", "index", "k", "max_len", "double_bos", "published_prompt", "seed",
            "temperature", "top_k", "top_p", "max_tokens", "device", "rules", "adaptive",
            "logprobs", "judge_base_url", "judge_template", "judge_mode", "search"]
"""config.json's keys, in order, as the flat RunConfig of the previous landing wrote them."""


def _leaves(obj: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += _leaves(value, (*prefix, f.name))
        else:
            out.append((*prefix, f.name))
    return out


def _some_config() -> RunConfig:
    """Every setting away from its default."""
    return RunConfig(out="o", dataset="mirage", questions=3, n=5, seed=7, device="cpu",
                     rules="medprm",
                     policy=PolicyConfig(model="p", backend="hf", preset="medprm", lora="l",
                                         min_steps=2, max_steps=4, temperature=0.5, top_k=3,
                                         top_p=0.8, max_tokens=9, logprobs=2),
                     verifiers=VerifierConfig(
                         PRMConfig(model="r", backend="prm-judge", max_len=99,
                                   double_bos=False, published_prompt=True, use_docs=True,
                                   judge=JudgeConfig("http://x", "t.txt", "forced")),
                         dataclasses.replace(VerifierConfig().orm, model="o", adapter="a",
                                             backend="orm-vllm")),
                     documents=dataclasses.replace(RunConfig().documents, index="i", k=2),
                     strategy=StrategyConfig(adaptive="esc:w=2", search="beam"),
                     engine=EngineOptions(dtype="float32"))


def test_config_json_records_every_setting_once():
    """Each leaf of the nested config but `out`, `engine` and `prm_cache_gb` (how, not what,
    it computes) is one key of the record, and the record reads back to the same config."""
    cfg = _some_config()
    leaves = (set(_leaves(cfg)) - {("out",), ("prm_cache_gb",)}
              - {p for p in _leaves(cfg) if p[0] == "engine"})
    assert sorted(RECORD.values()) == sorted(leaves)
    record = cfg.identity()
    assert list(record) == OLD_KEYS  # the flat shape and order older folders have
    assert all(record[k] != default_of(RunConfig, k) for k in record), record
    again = RunConfig.from_settings(**json.loads(json.dumps(record)), out="o",
                                    engine=dataclasses.asdict(cfg.engine))
    assert again == cfg
    assert "search" not in RunConfig().identity()  # as before: only when set


def test_default_of_follows_a_record_key_to_its_nested_field():
    assert default_of(RunConfig, "policy_backend") == "auto"
    assert default_of(RunConfig, "judge_mode") is None
    assert default_of(RunConfig, "k") == 5 and default_of(RunConfig, "n") == 8
    assert default_of(RunConfig, "prm") == "smollm2"


def test_an_old_flat_config_json_still_resumes(tmp_path):
    """A folder written before some settings existed: a missing key counts as its default;
    a recorded key that differs is refused."""
    cfg = RunConfig.from_settings(out=str(tmp_path), policy="m", policy_backend="hf", n=4)
    old = {k: v for k, v in cfg.identity().items()
           if k not in ("logprobs", "judge_base_url", "judge_template", "judge_mode")}
    (tmp_path / "config.json").write_text(json.dumps(old, indent=2) + "\n")
    check_run_dir(tmp_path, cfg, overwrite=False)
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.identity()
    with pytest.raises(ConfigMismatch, match="n: 4 -> 5"):
        check_run_dir(tmp_path, dataclasses.replace(cfg, n=5), overwrite=False)


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="judge"):
        RunConfig.from_settings(judge="x")


def test_an_old_search_folder_with_agg_last_resumes(tmp_path):
    cfg = RunConfig.from_settings(out=str(tmp_path), policy="m", policy_backend="vllm",
                                  search="beam:width=2,agg=final")
    old = {**cfg.identity(), "search": "beam:width=2,agg=last"}
    (tmp_path / "config.json").write_text(json.dumps(old, indent=2) + "\n")
    check_run_dir(tmp_path, cfg, overwrite=False)
