from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from bestofn.testing import BOS, MINUS, PLUS, STEP_TAG, build_tiny_llama, check_tokenizer


def _special_ids(tok) -> set[int]:
    return {i for i, t in tok.added_tokens_decoder.items() if t.special}


@pytest.fixture(scope="module")
def tiny_dirs(tiny_llama_special: Path, tiny_llama_single: Path, tiny_llama_split: Path):
    return {"special": tiny_llama_special, "single": tiny_llama_single, "split": tiny_llama_split}


def test_special_marker_is_one_special_token(tiny_llama_special: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    ids = tok.encode(STEP_TAG, add_special_tokens=False)
    assert len(ids) == 1 and ids[0] in _special_ids(tok)
    text = f"Step 1: fever{STEP_TAG}\nStep 2: cough{STEP_TAG}"
    assert tok.encode(text, add_special_tokens=False).count(ids[0]) == 2


def test_single_marker_is_one_ordinary_token(tiny_llama_single: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama_single)
    ids = tok.encode(STEP_TAG, add_special_tokens=False)
    assert len(ids) == 1 and ids[0] not in _special_ids(tok)
    assert tok.decode(ids, skip_special_tokens=True) == STEP_TAG


def test_split_marker_is_several_tokens(tiny_llama_split: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama_split)
    ids = tok.encode(STEP_TAG, add_special_tokens=False)
    assert len(ids) >= 2 and not set(ids) & _special_ids(tok)
    assert tok.decode(ids) == STEP_TAG


@pytest.mark.parametrize("marker", ["special", "single", "split"])
def test_plus_minus_single_tokens(tiny_dirs: dict[str, Path], marker: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dirs[marker])
    plus = tok.encode(PLUS, add_special_tokens=False)
    minus = tok.encode(MINUS, add_special_tokens=False)
    assert len(plus) == 1 and len(minus) == 1 and plus != minus
    check_tokenizer(tok, marker)


def test_chat_template_tokenised_with_special_tokens_has_two_bos(tiny_llama_special: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_llama_special)
    messages = [{"role": "user", "content": "Which drug?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        f"{BOS}<|start_header_id|>user<|end_header_id|>\n\nWhich drug?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    ids = tok(text, add_special_tokens=True).input_ids
    assert ids[:2] == [tok.bos_token_id] * 2 and ids[2] != tok.bos_token_id
    assert tok(text, add_special_tokens=False).input_ids[:2] != [tok.bos_token_id] * 2
    header = tok.convert_tokens_to_ids("<|start_header_id|>")
    assert header in _special_ids(tok)


@pytest.mark.slow  # loads a model
def test_bos_false_adds_no_bos(tmp_path: Path) -> None:
    tok = AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path, bos=False))
    assert tok("fever").input_ids[0] != tok.bos_token_id


def test_deterministic(tmp_path: Path, tiny_llama_special: Path) -> None:
    again = build_tiny_llama(tmp_path / "again", marker="special")
    first, second = (load_file(d / "model.safetensors") for d in (tiny_llama_special, again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    text = f"Step 1: The patient has fever{STEP_TAG} +\nThe answer is (B)."
    toks = [AutoTokenizer.from_pretrained(d) for d in (tiny_llama_special, again)]
    assert toks[0](text).input_ids == toks[1](text).input_ids
    assert (again / "tokenizer.json").read_bytes() == (
        tiny_llama_special / "tokenizer.json"
    ).read_bytes()


@pytest.mark.parametrize("marker", ["special", "single", "split"])
def test_forward_pass(tiny_dirs: dict[str, Path], marker: str) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dirs[marker])
    model = AutoModelForCausalLM.from_pretrained(tiny_dirs[marker]).eval()
    assert model.dtype == torch.float32 and model.config.vocab_size == len(tok) == 2048
    ids = tok(f"Step 1: fever{STEP_TAG}", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()


@pytest.mark.slow  # loads a model
def test_sequence_classification(tmp_path: Path) -> None:
    path = build_tiny_llama(tmp_path, num_labels=2)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    assert model.config.pad_token_id == tok.pad_token_id
    ids = tok("The answer is (A).", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()


def test_bad_head_size_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="head size"):
        build_tiny_llama(tmp_path, hidden_size=64, num_heads=4)


GUARDED = '''
import subprocess, sys

import pytest


def test_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_ray():
    import ray
    ray.init(num_cpus=1)


def test_model():
    from transformers import LlamaConfig, LlamaForCausalLM
    LlamaForCausalLM(LlamaConfig(num_hidden_layers=1, hidden_size=8, intermediate_size=8,
                                 num_attention_heads=1, vocab_size=16))


@pytest.mark.slow
def test_marked():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
'''


@pytest.mark.slow  # runs pytest in a process
@pytest.mark.parametrize("expr", ["not slow", "not slow and not gpu", "not (slow or gpu)", ""])
def test_fast_tier_guard_refuses_under_any_expression(pytester, expr):
    """An unmarked test that starts a process, calls ray.init or builds a model fails under any
    marker expression that keeps it; a slow test may."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_guarded=GUARDED)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n    gpu: gpu\n")
    result = pytester.runpytest_subprocess(*(["-m", expr] if expr else []))
    result.assert_outcomes(failed=3, passed=0 if expr else 1,
                           deselected=1 if expr else 0)
    for what in ("starts a process", "calls ray.init", "builds a transformers model"):
        result.stdout.fnmatch_lines([f"*{what}* in the fast tier: mark it @pytest.mark.slow*"])
