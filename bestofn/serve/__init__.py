"""`bestofn serve`: best-of-N reranking behind an OpenAI-compatible chat endpoint.

    from bestofn.serve import ServeConfig, create_app
    app = create_app(ServeConfig(n=16), Reranker(prm, method="weighted_min"), policy)
"""

from .app import create_app
from .config import ServeConfig
from .questions import make_question, parse_options, question_id

__all__ = ["ServeConfig", "create_app", "make_question", "parse_options", "question_id"]
