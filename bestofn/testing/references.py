"""Reference implementations the fast paths are checked against: Med-PRM's published step
scorer (`published_scores`) and Skywork-Reward's published usage of an outcome reward model
(`reference_scores`), each written the plain way, one input at a time."""

from __future__ import annotations

import torch

RAG = ("You are an evaluator assessing the logicality and validity of the reasoning in each step "
       "of the given explanation. In order to support the evaluation, the relevant documents, the "
       "question, and the explanation are provided sequentially. If the reasoning contains "
       "errors, output - after that step. If the reasoning in a step is logical and valid, output "
       "+ after that step. ")
PLAIN = ("You are an evaluator assessing the logicality and validity of the reasoning in each "
         "step of the given explanation. In order to support the evaluation, the question and the "
         "explanation are provided. If the reasoning contains errors, output - after that step. "
         "If the reasoning in a step is logical and valid, output + after that step.")


def published_scores(model, tok, question: str, marked: str, docs: list[str], max_len=4096,
                     double_bos=True) -> list[float]:
    """Med-PRM's published get_prob, generalised to a marker split into several tokens."""
    kept, used = [], 0
    for d in docs:
        n = len(tok(d, add_special_tokens=False)["input_ids"])
        if used + n + 1 > max_len - 1024:
            break
        kept.append(d)
        used += n + 1
    block = "".join(f"Document {i + 1}: {d}\n\n" for i, d in enumerate(kept))
    msgs = [{"role": "system", "content": RAG if kept else PLAIN},
            {"role": "user", "content": f"{block}Question: {question}\n\nExplanation: {marked}"}]
    raw = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    enc = tok(raw, return_offsets_mapping=True, add_special_tokens=double_bos)
    with torch.no_grad():
        logits = model(torch.tensor([enc["input_ids"]])).logits[0].double()
    plus = tok(" +", add_special_tokens=False)["input_ids"][0]
    minus = tok(" -", add_special_tokens=False)["input_ids"][0]
    start = raw.rindex("Explanation: ")
    ends = [i + len(" ки") for i in range(start, len(raw)) if raw.startswith(" ки", i)]
    probs = []
    for end in ends:
        pos = max(t for t, (s, e) in enumerate(enc["offset_mapping"]) if e > s and s < end)
        probs.append(torch.softmax(logits[pos, [plus, minus]], 0)[0].item())
    return probs


def reference_scores(model, tok, convs) -> list[float]:
    """Skywork's published usage: apply_chat_template(tokenize=True), one conversation at a
    time, logits[0][0]. pad_token_id is unset so the model reads the very last token."""
    model.config.pad_token_id = None
    out = []
    with torch.no_grad():
        for c in convs:
            ids = tok.apply_chat_template(c, tokenize=True, return_dict=True,
                                          return_tensors="pt")["input_ids"]
            out.append(model(input_ids=ids).logits[0][0].item())
    return out
