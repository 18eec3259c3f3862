"""Shared fixtures: tiny random Llama models built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bestofn.testing import Marker, build_tiny_llama


def _build(factory: pytest.TempPathFactory, marker: Marker) -> Path:
    return build_tiny_llama(factory.mktemp(f"tiny_llama_{marker}"), marker=marker)


@pytest.fixture(scope="session")
def tiny_llama_special(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' is one added special token (like Med-PRM's)."""
    return _build(tmp_path_factory, "special")


@pytest.fixture(scope="session")
def tiny_llama_single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' is one ordinary BPE token."""
    return _build(tmp_path_factory, "single")


@pytest.fixture(scope="session")
def tiny_llama_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Llama whose step tag ' ки' splits into several byte-level tokens (like SmolLM2)."""
    return _build(tmp_path_factory, "split")
