"""bestofn: best-of-N reranking for medical question answering with process reward models."""

from .api import Reranker, best_of_n
from .text.records import Document, Item, Question, Selection, Solution, StepScores

__all__ = ["Document", "Item", "Question", "Reranker", "Selection", "Solution", "StepScores",
           "best_of_n"]
__version__ = "0.1.0"
