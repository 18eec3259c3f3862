"""A chat request → the `Question` the policy and the verifiers read.

The last user message is the question. Options come from the `bestofn.options` field, or are
parsed from a trailing block of option lines (`A. text`, `(A) text`, `A) text`, `A: text`),
letters in order from A, the way the bundled datasets render them (`Question.text()` writes
them back as `(A) text` lines). The question id is a hash of stem and options, so the same
question gets the same per-question sampling seed however requests are batched.
"""

from __future__ import annotations

import hashlib
import json

from ..text.option_lines import split_options
from ..text.records import Question
from .protocol import APIError, ChatCompletionRequest


def parse_options(text: str) -> tuple[str, dict[str, str]]:
    """(stem, options) of a chat message: `bestofn.text.option_lines.split_options`."""
    return split_options(text)


def question_id(stem: str, options: dict[str, str]) -> str:
    """A stable id from the question's content."""
    blob = json.dumps([stem, options], sort_keys=True, ensure_ascii=False).encode()
    return "q-" + hashlib.sha256(blob).hexdigest()[:16]


def make_question(stem_text: str, options: dict[str, str] | None = None) -> Question:
    """The question for `stem_text` (options given, or parsed from the text)."""
    stem, opts = (stem_text.strip(), dict(options)) if options else parse_options(stem_text)
    return Question(id=question_id(stem, opts), stem=stem, options=opts)


def request_question(req: ChatCompletionRequest, max_messages: int) -> Question:
    """The question a request asks; refuses requests without one (400 naming the field)."""
    if not req.messages:
        raise APIError(400, "messages: at least one message is needed", param="messages")
    if len(req.messages) > max_messages:
        raise APIError(400, f"messages: {len(req.messages)} messages, the server takes at most "
                       f"{max_messages}", param="messages")
    users = [m for m in req.messages if m.role == "user"]
    if not users or not users[-1].text().strip():
        raise APIError(400, "messages: no user message with text (the last user message is "
                       "the question)", param="messages")
    options = req.bestofn.options if req.bestofn else None
    if options is not None:
        bad = [k for k in options if not k.strip() or len(k) > 8]
        if bad or not options:
            raise APIError(400, "bestofn.options: give option labels (e.g. A, B) → text",
                           param="bestofn.options")
    return make_question(users[-1].text(), options)
