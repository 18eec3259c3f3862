"""ProcessBench's critic protocol against an independent transcription of `code/run_eval.py`
(written here as their script reads, with a hand scan instead of a regex), on constructed replies
including malformed ones; the majority over samples; and the whole command over a real local
HTTP server with scripted replies (no model: fast tier)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bestofn.cli import main
from bestofn.evaluation.labels import read_labelled
from bestofn.evaluation.verifier_eval import evaluate_critic
from bestofn.scorers.critic import (
    CRITIC_TEMPLATE,
    CriticPrompt,
    CriticVerdict,
    boxed_answer,
    tagged_paragraphs,
    verdict,
)

# ---- the independent transcription -------------------------------------------------------


def ref_extract(text: str) -> str | None:
    """Last `\\boxed{` ... first `}` after it, with no `}` inside; None without one."""
    found, k = None, 0
    while True:
        i = text.find("\\boxed{", k)
        if i < 0:
            return found
        j = text.find("}", i + 7)
        if j < 0:
            return found
        found, k = text[i + 7:j].strip(), j + 1


def ref_int(s: str | None) -> int | None:
    try:
        return int(s)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def ref_greedy(reply: str) -> int | None:
    return ref_int(ref_extract(reply))


def ref_voting(replies: list[str]) -> int | None:
    preds = [p for p in (ref_extract(r) for r in replies) if p is not None]
    if not preds:
        return None
    best, best_n = None, 0
    for p in preds:  # the first answer to reach the top count, as Counter.most_common(1)
        n = preds.count(p)
        if n > best_n:
            best, best_n = p, n
    return ref_int(best)


def ref_prompt(problem: str, steps: list[str]) -> str:
    tagged = ""
    for i, s in enumerate(steps):
        tagged += "<paragraph_" + str(i) + ">\n" + s + "\n</paragraph_" + str(i) + ">\n\n"
    tagged = tagged.strip()
    return ("The following is a math problem and a solution (split into paragraphs, enclosed "
            "with tags and indexed from 0):\n\n[Math Problem]\n\n" + problem + "\n\n[Solution]"
            "\n\n" + tagged + "\n\nYour task is to review and critique the solution paragraph "
            "by paragraph. Once you identify an error in a paragraph, return the index of the "
            "paragraph where the earliest error occurs. Otherwise, return the index of -1 "
            "(which typically denotes \"not found\").\n\nPlease put your final answer (i.e., "
            "the index) in \\boxed{}.")


REPLIES = [
    "The error is in paragraph 2. \\boxed{2}",
    "All fine: \\boxed{-1}",
    "\\boxed{ 3 }",
    "First \\boxed{1} then on reflection \\boxed{0}",
    "no box at all, the answer is 2",
    "\\boxed{}",
    "\\boxed{two}",
    "\\boxed{1.0}",
    "\\boxed{+4}",
    "\\boxed{\\text{3}}",
    "\\boxed{3",
    "\\boxed {3}",
    "\\boxed{1_0}",
    "\\boxed{\u0663}",
    "\\boxed{-1} and \\boxed{}",
    "\\fbox{2}",
    "boxed{5}",
    "\\boxed{7}}}",
    "",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_greedy_parse_matches_the_transcription(reply: str) -> None:
    assert boxed_answer(reply) == ref_extract(reply)
    assert verdict([reply]).prediction == ref_greedy(reply)


def test_malformed_replies_give_no_prediction() -> None:
    for reply in ("no box", "\\boxed{}", "\\boxed{two}", "\\boxed{1.0}", "\\boxed{3",
                  "\\boxed{\\text{3}}", ""):
        v = verdict([reply])
        assert v.prediction is None and v.unparsed_replies == 1, reply
    assert verdict(["\\boxed{1} \\boxed{0}"]).prediction == 0  # the last box counts
    assert verdict(["\\boxed{ -1 }"]).prediction == -1


def test_majority_matches_the_transcription_on_random_reply_sets() -> None:
    rng = random.Random(11)
    pool = [*REPLIES, "\\boxed{2}", "\\boxed{2}", "\\boxed{-1}", "\\boxed{02}"]
    for _ in range(500):
        replies = [rng.choice(pool) for _ in range(rng.randint(2, 8))]
        assert verdict(replies).prediction == ref_voting(replies), replies


def test_majority_by_hand() -> None:
    b = "\\boxed{{{}}}".format
    assert verdict([b(1), b(2), b(2), "junk"]).prediction == 2
    assert verdict([b(3), b(1), b(1), b(3)]).prediction == 3  # a tie: the first seen
    assert verdict(["junk", "junk", b(4)]).prediction == 4  # unparsable replies drop out
    assert verdict(["junk", "\\boxed{}"]).prediction is None
    # the vote is over the boxed strings: "x" wins and is no integer, so no prediction
    assert verdict([b("x"), b("x"), b(1)]).prediction is None
    v = verdict([b(1), "junk", b("x")])
    assert v.unparsed_replies == 2 and v.prediction == 1


def test_prompt_is_processbench_template() -> None:
    steps = ["Let x = 2.", "Then 2x = 5.", "So the answer is 5."]
    msgs = CriticPrompt().messages("What is 2x?", steps)
    assert msgs == [{"role": "user", "content": ref_prompt("What is 2x?", steps)}]
    assert tagged_paragraphs(["a"]) == "<paragraph_0>\na\n</paragraph_0>"
    assert CRITIC_TEMPLATE.count("{problem}") == 1


def test_template_from_file(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("  P={problem} S={tagged_response} \\boxed{{}}\n\n")
    got = CriticPrompt.from_file(f).messages("q", ["a", "b"])[0]["content"]
    assert got == "P=q S=" + tagged_paragraphs(["a", "b"]) + " \\boxed{}"
    f.write_text("no placeholders")
    with pytest.raises(ValueError, match="tagged_response"):
        CriticPrompt.from_file(f)


def test_critic_metrics_against_the_reference(tmp_path: Path) -> None:
    """acc1/acc2/F1 computed as run_eval + their F1 script do, an unparsable reply a miss."""
    rng = random.Random(5)
    recs, verdicts = [], []
    for _ in range(60):
        m = rng.randint(1, 6)
        label = -1 if rng.random() < 0.4 else rng.randrange(m)
        recs.append({"steps": [f"s{i}" for i in range(m)], "label": label})
        reply = rng.choice([f"\\boxed{{{label}}}", "\\boxed{-1}", "\\boxed{0}", "junk"])
        verdicts.append(verdict([reply]))
    f = tmp_path / "pb.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    sols = read_labelled(f)
    ev = evaluate_critic(sols, verdicts, b=0)
    match = [v.prediction == r["label"] for v, r in zip(verdicts, recs, strict=True)]
    err = [m for m, r in zip(match, recs, strict=True) if r["label"] != -1]
    cor = [m for m, r in zip(match, recs, strict=True) if r["label"] == -1]
    acc1, acc2 = 100 * sum(err) / len(err), 100 * sum(cor) / len(cor)
    assert ev.values["acc_erroneous"] == pytest.approx(acc1)
    assert ev.values["acc_correct"] == pytest.approx(acc2)
    assert ev.values["processbench_f1"] == pytest.approx(2 * acc1 * acc2 / (acc1 + acc2))
    assert ev.critic["unparsed"] == sum(v.prediction is None for v in verdicts) > 0
    assert ev.values["step_auroc"] is None and ev.threshold is None
    boot = evaluate_critic(sols, verdicts, b=200, seed=1)
    lo, hi = boot.intervals["processbench_f1"]
    assert lo <= ev.values["processbench_f1"] <= hi and lo < hi
    assert boot.intervals["step_auroc"] is None and boot.values == ev.values


@pytest.mark.slow
def test_critic_on_the_embedded_model_with_vllm(tmp_path: Path, capsys) -> None:
    """The real offline engine: every solution gets a verdict (or is counted unparsable)."""
    recs = [{"problem": "What is 2 + 3?", "steps": ["2 + 3 = 5.", "So the answer is 5."],
             "label": -1},
            {"problem": "What is 4 * 3?", "steps": ["4 * 3 = 7.", "So the answer is 7."],
             "label": 0}]
    f = tmp_path / "pb.json"
    f.write_text(json.dumps(recs))
    assert main(["verifier-eval", "--input", str(f), "--critic", "smollm2",
                 "--critic-max-tokens", "48", "--critic-samples", "2", "--bootstrap", "0",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # after vLLM's lines
    assert got["n"] == 2 and got["critic"]["samples"] == 2
    assert 0 <= got["critic"]["unparsed"] <= 2
    assert got["critic"]["unparsed_replies"] >= got["critic"]["unparsed"]
    assert got["acc_erroneous"] in (0.0, 100.0) and got["acc_correct"] in (0.0, 100.0)


def test_critic_command_over_a_server(tmp_path: Path, capsys, serve) -> None:
    """`--critic NAME --critic-base-url URL --critic-samples 3`: the requests carry the
    protocol's prompt and sampling, and the reported numbers are those of the replies."""
    rng = random.Random(3)
    recs = []
    for k in range(30):
        m = rng.randint(2, 5)
        recs.append({"id": f"r{k}", "problem": f"problem {k}", "label": rng.choice(
            [-1, *range(m)]), "steps": [f"step {i} of {k}" for i in range(m)]})
    f = tmp_path / "pb.json"
    f.write_text(json.dumps(recs))
    answers = {r["problem"]: r for r in recs}

    def reply(body: dict, i: int) -> str:
        text = body["messages"][0]["content"]
        r = next(v for k, v in answers.items() if f"\n{k}\n" in text)
        k = int(r["id"][1:])
        options = ["\\boxed{" + str(r["label"]) + "}", "\\boxed{-1}", "garbled", "\\boxed{0}"]
        return options[(k + i) % 4]

    server = serve(reply=reply)
    assert main(["verifier-eval", "--input", str(f), "--critic", "served",
                 "--critic-base-url", server.url, "--critic-samples", "3",
                 "--bootstrap", "0", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(server.requests) == len(recs)
    body = server.requests[0]
    assert (body["n"], body["temperature"], body["top_p"], body["seed"]) == (3, 1.0, 0.9, 42)
    for r in recs:
        assert any(b["messages"][0]["content"] == ref_prompt(r["problem"], r["steps"])
                   for b in server.requests)
    preds = [ref_voting([reply({"messages": [{"content": ref_prompt(r["problem"],
                                                                     r["steps"])}]}, i)
                         for i in range(3)]) for r in recs]
    match = [p == r["label"] for p, r in zip(preds, recs, strict=True)]
    err = [m for m, r in zip(match, recs, strict=True) if r["label"] != -1]
    cor = [m for m, r in zip(match, recs, strict=True) if r["label"] == -1]
    assert got["acc_erroneous"] == pytest.approx(100 * sum(err) / len(err))
    assert got["acc_correct"] == pytest.approx(100 * sum(cor) / len(cor))
    assert got["critic"]["samples"] == 3
    assert got["critic"]["unparsed"] == sum(p is None for p in preds)
    assert got["labels"] == {"label": len(recs)} and got["threshold"] is None


def test_greedy_request_settings(tmp_path: Path, capsys, serve) -> None:
    f = tmp_path / "pb.jsonl"
    f.write_text(json.dumps({"problem": "p", "steps": ["a", "b"], "label": 1}) + "\n"
                 + json.dumps({"problem": "q", "steps": ["a"], "label": -1}) + "\n")
    server = serve(reply=lambda body, i: "I think \\boxed{1}")
    assert main(["verifier-eval", "--input", str(f), "--critic", "m", "--critic-base-url",
                 server.url, "--critic-max-tokens", "64", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    b = server.requests[0]
    assert (b["n"], b["temperature"], b["seed"], b["max_tokens"]) == (1, 0.0, 42, 64)
    assert "accuracy on erroneous  100.0" in out and "accuracy on correct    0.0" in out
    assert "0 solutions without a parsable answer" in out


def test_critic_verdict_counts_unparsed_replies(tmp_path: Path) -> None:
    v = CriticVerdict(("\\boxed{1}", "x", "\\boxed{y}"), 1)
    assert v.unparsed_replies == 2
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps({"steps": ["a"], "label": -1}) + "\n")
    with pytest.raises(AssertionError):
        evaluate_critic(read_labelled(f), [])
