"""Device and dtype choices shared by the torch backends."""

from __future__ import annotations

import threading

import torch

MODEL_BUILD = threading.RLock()
"""Held while a transformers or sentence-transformers model is built. A build patches
process-wide state (transformers swaps `torch.nn.init`'s functions for no-ops until the build
ends); two builds at once on threads restore each other's patches and leave torch's
initializers no-ops for the rest of the process (seen with transformers 5.19, and then a later
GGUF load failed on a meta tensor). Start-up builds a run's parts on threads
(`execution.startup`), so every model load in bestofn holds this lock; vLLM builds its model
in its own process and does not need it."""

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16,
           "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` is CUDA when there is one, else CPU; `cuda` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} asked for, but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on GPU and float32 on CPU (bf16 is 4-5x slower on CPUs without it)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]
