"""Answer extraction from policy outputs: option letters, categorical labels or open answers.

`extract_answer` ignores `<think>` blocks and, when an `<answer>…</answer>` tag is present,
searches only the last tag's content. For multiple-choice questions the rules, in priority
order and each taking the last match: `\\boxed{X}`; an answer phrase ("the answer is (X)",
"Answer: X", "correct answer is option X", "is option X", "I would choose X") or the letter
before one ("(X) is the correct answer"), hedges allowed ("the answer is most likely (X)", "would
probably be X"); the option text alone, or as the last line; a line that is only a letter ("C.",
"(C)", "Most likely C.") or a last line starting with a letter and its option text
("C) Cholesterol embolization."); "option X" in a sentence that calls it the answer or correct.
Letters outside the question's options are never answers, and an ambiguous answer ("A and C",
"B or C") is none: None is preferred over a wrong letter.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from .steps import strip_think

Options = Mapping[str, str] | Sequence[str] | None

# A bare letter must end there: end of line, a space then a non-letter, or punctuation that
# is not glued to a word ("the answer is a viral infection" is not "A"; "i.e." is not "I").
_GUARD = r"(?=[ \t]*$|[ \t]+[^\sA-Za-z]|[).:,;!?*\]'\"](?![A-Za-z]))"
_LETTER = (r"[ \t*]*(?:\([ \t]*(?P<paren>[A-Za-z])[ \t]*\)|\[[ \t]*(?P<paren2>[A-Za-z])[ \t]*\]"
           r"|(?P<bare>[A-Za-z])" + _GUARD + r")")
_LETTER_RE = re.compile(_LETTER, re.M)
# A lower-case bare letter must end the line or meet punctuation ("answer: a 45-year-old…").
_LOWER_END_RE = re.compile(r"[ \t]*$|[).:,;!?*\]'\"]", re.M)
# Hedges a model puts between the answer phrase and the letter ("is most likely (C)", "is,
# probably, B", "would most likely be C"). "unlikely"/"less likely" are not hedges: they negate.
_HEDGE = (r"(?:(?:most|very|quite|more[ \t]+than|highly|the[ \t]+most)[ \t]+)?"
          r"(?:likely|probably|possibly|presumably|plausibly)"
          r"|in[ \t]+all[ \t]+likelihood|almost[ \t]+certainly|certainly|definitely|clearly"
          r"|perhaps|maybe|indeed|actually|still|therefore|thus|hence|then")
_HEDGES = r"(?:[ \t]*,?[ \t]*(?:" + _HEDGE + r")\b[ \t]*,?)*"
_BE = r"(?:[ \t]+(?:to|going[ \t]+to)[ \t]+be\b)?"
# "is", "would be", "seems to be", ":" after "answer": hedged verbs included ("could be").
_VERB = (r"(?:is|(?:would|could|might|may|should|must|will)" + _HEDGES + r"[ \t]+be"
         r"|(?:seems|appears)[ \t]+to[ \t]+be|:)")
# Fillers between "answer" and its verb ("the answer, therefore, is").
_FILLER = r"(?:[ \t]*,[ \t]*(?:therefore|thus|then|hence|I[ \t]+(?:think|believe))[ \t]*,)?"
_PHRASE_RE = re.compile(
    r"(?:\banswer\b[ \t*]*" + _FILLER + r"[ \t*]*" + _VERB
    + r"|\bcorrect[ \t]+(?:option|choice)[ \t]+is"
    r"|\b(?:I|we)(?:[ \t]+(?:would|will)|'d|'ll)?[ \t]+(?:choose|select|pick|go[ \t]+with)"
    r"|\bis" + _HEDGES + r"[ \t]+(?=option|choice))"
    + _HEDGES + _BE + r"[ \t]*:?[ \t]*(?:(?:option|choice)\b[ \t]*:?[ \t]*)?" + _LETTER,
    re.I | re.M)
# The letter before the phrase: "(C) is most likely the correct answer", "So B is the answer".
# A bare letter must open its sentence or follow "so"/"thus"… (`_opens_sentence`): "vitamin C
# is the answer" is not C.
_REVERSE_RE = re.compile(
    r"(?:\([ \t]*(?P<paren>[A-Z])[ \t]*\)|\b(?P<bare>[A-Z]))[ \t]+(?i:(?:is|would[ \t]+be"
    r"|(?:seems|appears)[ \t]+to[ \t]+be)" + _HEDGES + r"[ \t]+the[ \t]+(?:(?:single"
    r"|most[ \t]+likely|most[ \t]+appropriate|best|correct|right|final)[ \t]+)*"
    r"(?:answer|option|choice)\b)", re.M)
_LIST_HEAD_RE = re.compile(
    r"(?<![A-Za-z])\(?[A-Z]\)?[ \t]*(?:,|/|&|\band/or|\band|\bor|\bas[ \t]+well[ \t]+as)[ \t]*$")
_SENTENCE_START_RE = re.compile(r"(?:^|[.!?:;*]|(?i:\b(?:so|thus|therefore|hence|then),?))[ \t]*$")
# "A, C", "A and C", "(B) or (C)": several letters given, so no single answer.
_LIST_TAIL_RE = re.compile(
    r"[ \t]*\)?[ \t]*(?:,|/|&|\band/or\b|\band\b|\bor\b|\bas[ \t]+well[ \t]+as\b)[ \t]*\(?[A-Z]\)?"
    r"(?![A-Za-z])")
_BOXED_RE = re.compile(r"\\boxed[ \t]*\{")
_LATEX_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|bf)[ \t]*\{([^{}]*)\}")
_LEAD_HEDGE = r"(?:(?i:" + _HEDGE + r")[ \t]*[,:]?[ \t]+)?"
_LONE_LINE_RE = re.compile(
    r"^[ \t*#>-]*" + _LEAD_HEDGE + r"(?:(?:[Oo]ption|[Cc]hoice)[ \t]+)?"
    r"\(?[ \t]*(?P<letter>[A-Z])[ \t]*\)?[ \t]*[.):]?[ \t*]*$", re.M)
_LETTER_TEXT_RE = re.compile(
    r"^[ \t*#>-]*" + _LEAD_HEDGE + r"(?:\((?P<p>[A-Z])\)|(?P<b>[A-Z])[).:,])[ \t]+(?P<rest>\S.*)$",
    re.M)
_TEXT_SIMILARITY = 0.85
# After the word "option" an upper-case letter may be followed by a word ("option C is …").
_OPTION_WORD_RE = re.compile(
    r"\b(?:option|choice)\b[ \t]*(?:\((?P<paren>[A-Za-z])\)|\[(?P<paren2>[A-Za-z])\]"
    r"|(?-i:(?P<bare>[A-Z]))\b)", re.I)
_CONCLUSION_RE = re.compile(r"\b(?:answer|correct)\b", re.I)
_NEGATION_RE = re.compile(r"\b(?:not|incorrect|wrong|unlikely|except)\b|n't\b", re.I)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S | re.I)
_LABEL_CUE_RE = re.compile(r"\banswer\b[ \t*]*(?:is|:)", re.I)
_OPEN_RES = tuple(re.compile(p, re.I) for p in (
    r"\bfinal[ \t]+diagnosis\b[ \t*]*:[ \t*]*\n?[ \t*]*(?P<x>[^\n]*\S)",
    r"\bfinal[ \t]+answer\b[ \t*]*:[ \t*]*\n?[ \t*]*(?P<x>[^\n]*\S)",
    r"\bdiagnosis[ \t]+is[ \t]*:?[ \t]*(?P<x>[^\n]+?)(?=[.!?](?:\s|\Z)|\n|\Z)",
))


@dataclass(frozen=True)
class _Choices:
    """The allowed letters and, when known, each letter's normalised option text."""

    letters: frozenset[str]
    texts: dict[str, str]
    strict: bool  # options unknown: any letter, but only upper-case bare letters


def extract_answer(text: str, options: Options = None,
                   labels: Sequence[str] | None = None) -> str | None:
    """The answer in a policy output: an option letter, a label, open text, or None.

    `options` maps letters to option text or lists the letters (None: unknown, any letter in
    a strict form, else the open answer); `labels` makes the answer one of those categories.
    """
    region, tagged = _answer_region(strip_think(text))
    if labels:
        return _extract_label(region if tagged else _after_cue(region), region, labels)
    choices = _choices(options)
    if choices is None:
        return _clean(region) if tagged else _extract_open(region)
    if choices.strict:
        return _strict_letter(region, choices) or (_clean(region) if tagged
                                                   else _extract_open(region))
    return _extract_choice(region, choices)


# ---- regions and options -------------------------------------------------------------------

def _answer_region(text: str) -> tuple[str, bool]:
    """The last `<answer>` content (True) or the whole text (False)."""
    tags = _ANSWER_TAG_RE.findall(text)
    return (tags[-1], True) if tags else (text, False)


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def _norm_option(s: str) -> str:
    """An option's text for comparison: normalised, stray quotes and final period dropped."""
    return _norm(s.strip().strip("\"'").strip().removesuffix("."))


def _choices(options: Options) -> _Choices | None:
    """Allowed letters; None for an open question (options given but empty)."""
    if options is None:
        return _Choices(frozenset(string.ascii_uppercase), {}, strict=True)
    if isinstance(options, Mapping):
        texts = {str(k).strip().upper(): _norm_option(str(v)) for k, v in options.items()}
    else:
        items = [str(x).strip() for x in options]
        if all(len(x) == 1 and x.isalpha() for x in items):
            texts = {x.upper(): "" for x in items}
        else:  # a list of option texts: letters A, B, C… in order
            texts = dict(zip(string.ascii_uppercase, map(_norm_option, items), strict=False))
    if not texts:
        return None
    return _Choices(frozenset(texts), {k: v for k, v in texts.items() if v}, strict=False)


# ---- multiple choice -----------------------------------------------------------------------

def _extract_choice(region: str, ch: _Choices) -> str | None:
    return (_strict_letter(region, ch) or _option_text_alone(region, ch)
            or _lone_letter(region, ch) or _option_sentence(region, ch))


def _strict_letter(region: str, ch: _Choices) -> str | None:
    """The last boxed letter, else the last letter an answer phrase names (after or before it)."""
    if boxed := _boxed_letter(region, ch):
        return boxed
    found = [(m.end(), x) for m in _PHRASE_RE.finditer(region) if (x := _letter_of(m, region, ch))]
    found += [(m.end(), x) for m in _REVERSE_RE.finditer(region)
              if (x := _reverse_letter(m, region, ch))]
    return max(found)[1] if found else None


def _reverse_letter(m: re.Match[str], s: str, ch: _Choices) -> str | None:
    """The letter of "X is the answer", unless X is a word's letter or ends a list."""
    before = s[:m.start()]
    if m.group("bare") and not _SENTENCE_START_RE.search(before):
        return None
    letter = m.group("paren") or m.group("bare")
    return None if letter not in ch.letters or _LIST_HEAD_RE.search(before) else letter


def _letter_of(m: re.Match[str], s: str, ch: _Choices) -> str | None:
    """The allowed letter a `_LETTER` match names, unless a list of letters follows it."""
    bare = m.group("bare")
    if bare and bare.islower() and (ch.strict or not _LOWER_END_RE.match(s, m.end())):
        return None
    letter = (m.group("paren") or m.group("paren2") or bare).upper()
    if letter not in ch.letters or _LIST_TAIL_RE.match(s, m.end()):
        return None
    return letter


def _boxed_contents(s: str) -> list[str]:
    """The contents of every `\\boxed{…}`, braces balanced, LaTeX text wrappers removed."""
    out = []
    for m in _BOXED_RE.finditer(s):
        depth, i = 1, m.end()
        while i < len(s) and depth:
            depth += {"{": 1, "}": -1}.get(s[i], 0)
            i += 1
        content = s[m.end():i - 1] if depth == 0 else s[m.end():]
        while _LATEX_WRAP_RE.search(content):
            content = _LATEX_WRAP_RE.sub(r"\1", content)
        out.append(content.strip().strip("$").strip())
    return out


def _boxed_letter(s: str, ch: _Choices) -> str | None:
    for content in reversed(_boxed_contents(s)):
        m = _LETTER_RE.match(content)
        letter = (m and _letter_of(m, content, ch)) or _text_to_letter(content, ch)
        if letter:
            return letter
    return None


def _text_to_letter(s: str, ch: _Choices) -> str | None:
    """The letter whose option text is exactly `s` (case-insensitive, final period dropped)."""
    target = _norm_option(s.strip().strip("*"))
    hits = [k for k, v in ch.texts.items() if v == target]
    return hits[0] if len(hits) == 1 else None


def _option_text_alone(region: str, ch: _Choices) -> str | None:
    """The region, or else its last line, is exactly one option's text (a model that answers
    with the option itself, after its reasoning or alone)."""
    lines = [ln for ln in region.splitlines() if ln.strip()]
    return (_text_to_letter(region, ch) or _text_to_letter(lines[-1], ch)) if lines else None


def _lone_letter(region: str, ch: _Choices) -> str | None:
    """The last letter-only line, or a last line starting with a letter and its option text."""
    found = [(m.start(), m.group("letter")) for m in _LONE_LINE_RE.finditer(region)
             if m.group("letter") in ch.letters]
    lines = [ln for ln in region.splitlines() if ln.strip()]
    m = _LETTER_TEXT_RE.match(lines[-1]) if lines else None
    if m and _names_option(m, lines[-1], ch):
        found.append((len(region), m.group("p") or m.group("b")))
    return max(found)[1] if found else None


def _names_option(m: re.Match[str], line: str, ch: _Choices) -> bool:
    """A `letter) text` line names its option: allowed letter, no list, and its option text
    (up to typos: models correct misspelt options) when the texts are known."""
    letter = m.group("p") or m.group("b")
    end = m.end("p") if m.group("p") else m.end("b")
    if letter not in ch.letters or _LIST_TAIL_RE.match(line, end):
        return False
    want = ch.texts.get(letter)
    if not want:
        return True
    head = _norm(m.group("rest"))[:len(want)]
    return SequenceMatcher(None, head, want).ratio() >= _TEXT_SIMILARITY


def _option_sentence(region: str, ch: _Choices) -> str | None:
    """'Option X' in the last sentence that calls one single option the answer or correct."""
    for sentence in reversed(_SENTENCE_SPLIT_RE.split(region)):
        if not _CONCLUSION_RE.search(sentence) or _NEGATION_RE.search(sentence):
            continue
        letters = {_letter_of(m, sentence, ch) for m in _OPTION_WORD_RE.finditer(sentence)}
        if len(letters) == 1 and None not in letters:
            return letters.pop()
    return None


# ---- open questions and labels -------------------------------------------------------------

def _clean(s: str) -> str | None:
    s = s.strip().strip("*#\"'` \t").strip().removesuffix(".").strip()
    return s or None


def _extract_open(region: str) -> str | None:
    """Boxed content, else `Final Diagnosis:`, `Final Answer:`, `diagnosis is …` (last each)."""
    for content in reversed(_boxed_contents(region)):
        if _clean(content):
            return _clean(content)
    for pattern in _OPEN_RES:
        hits = [x for x in (_clean(m.group("x")) for m in pattern.finditer(region)) if x]
        if hits:
            return hits[-1]
    return None


def _after_cue(region: str) -> str:
    """The text after the last "answer is"/"Answer:" phrase, or the whole region."""
    cues = list(_LABEL_CUE_RE.finditer(region))
    return region[cues[-1].end():] if cues else region


def _extract_label(region: str, fallback: str, labels: Sequence[str]) -> str | None:
    """The label occurring last (longest wins at the same end), in `region` then `fallback`."""
    for text in (region, fallback):
        norm = _norm(text)
        hits = [(m.end(), len(lab), lab) for lab in labels if _norm(lab)
                for m in re.finditer(r"(?<!\w)" + re.escape(_norm(lab)) + r"(?!\w)", norm)]
        if hits:
            return max(hits)[2]
    return None
