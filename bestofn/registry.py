"""One registry per kind of backend (policy, scorer, retriever): a name → "module:factory" map.

Factories are imported lazily so that a backend's heavy dependencies (vLLM, FAISS, PEFT) load
only when that backend is used; a missing one raises with the `pip install` line that fixes it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class Registry:
    """Backends of one kind, keyed by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | Callable[..., Any]] = {}

    def register(self, name: str, target: str | Callable[..., Any]) -> None:
        """Add a backend: `target` is a factory or a lazy "package.module:attr" path."""
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def check(self, name: str, flag: str) -> None:
        """Refuse an unknown name before anything is built: `flag` names where it came from."""
        if name not in self._entries:
            raise ValueError(f"{flag} {name!r}: unknown {self.kind}; known: "
                             f"{', '.join(self.names())}")

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        target = self._entries[name]
        if callable(target):
            return target
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)


def require(module: str, pip: str) -> Any:
    """Import an optional dependency or raise ImportError naming the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for this feature: pip install {pip}") from e
