"""The evaluation harness (first version: retrieval quality on a question set)."""

from eval.retrieval import QuestionCase, RetrievalReport, evaluate_retrieval, load_questions

__all__ = ["QuestionCase", "RetrievalReport", "evaluate_retrieval", "load_questions"]
