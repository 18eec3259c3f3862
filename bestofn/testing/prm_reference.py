"""The published Med-PRM scoring loop, kept as the reference every fast path is checked against.

One solution at a time, a full forward pass, full-vocabulary logits, then a 2-way softmax over
the ' +'/' -' logits at each marker. Slow on purpose: it is the baseline of
`benchmarks/prm_speed.py` and the oracle of the tests.
"""

from __future__ import annotations

from typing import Any

import torch

from ..scorers.prm_prompt import EncodedPrompt
from ..text.records import StepScores


@torch.inference_mode()
def reference_step_scores(model: Any, encoded: EncodedPrompt, plus_id: int,
                          minus_id: int) -> StepScores:
    """Per-step P(+) of one encoded prompt by a plain full forward pass."""
    if encoded.reason:
        return StepScores.unscored(encoded.reason)
    device = next(model.parameters()).device
    ids = torch.tensor([encoded.input_ids], device=device)
    logits = model(input_ids=ids).logits[0].float()
    pos = torch.tensor(encoded.marker_positions, device=device)
    two = logits[pos][:, [plus_id, minus_id]]
    probs = torch.softmax(two, dim=-1)[:, 0]
    return StepScores(probs=tuple(probs.double().cpu().tolist()))
