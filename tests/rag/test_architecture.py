"""The dependency rules of STYLE.md, checked: rag never imports ingest/eval; public __all__ resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


def test_rag_never_imports_ingest_or_eval() -> None:
    offenders = {f: sorted(n for n in names if n.split(".")[0] in {"ingest", "eval"})
                 for f, names in imported_modules("rag").items()}
    assert {f: n for f, n in offenders.items() if n} == {}


def test_types_and_errors_import_nothing_of_the_project() -> None:
    for name in ("rag/types.py", "rag/errors.py"):
        assert {n for n in imported_modules("rag")[name] if n.split(".")[0] in {"rag", "ingest", "eval", "prompts"}} == set()


@pytest.mark.parametrize("adapter,library", [
    ("rag/index/faiss_index.py", "faiss"), ("rag/embedders/sentence_transformer.py", "sentence_transformers"),
    ("rag/llm/openai_compatible.py", "openai"), ("ingest/unstructured_loader.py", "unstructured"),
    ("rag/index/bm25_index.py", "bm25s"), ("rag/tokenizer.py", "jieba"), ("rag/tokenizer.py", "Stemmer"),
    ("rag/embedders/onnx.py", "onnxruntime"), ("rag/embedders/openvino.py", "openvino"),
    ("rag/embedders/openvino.py", "nncf"), ("ingest/distributed.py", "ray"),
])
def test_each_library_is_imported_in_one_module(adapter: str, library: str) -> None:
    users = [f for package in ("rag", "ingest", "eval") for f, names in imported_modules(package).items()
             if any(n.split(".")[0] == library for n in names)]
    assert users == [adapter]


@pytest.mark.parametrize("package", ["rag", "rag.index", "rag.embedders", "rag.llm", "rag.api", "ingest", "eval", "prompts"])
def test_public_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} has an empty __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"
