#!/usr/bin/env bash
# Install what the tests need and run the whole suite: lint, import rules, types, then pytest
# (unit, integration on the real model/FAISS/unstructured, and the real vLLM end-to-end test).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not vllm".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh cpu,dev
py=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

echo "==> ruff"
$py -m ruff check rag ingest eval prompts tests bench samples/build_binary_docs.py
echo "==> import rules (import-linter)"
.venv/bin/lint-imports
echo "==> mypy"
$py -m mypy
echo "==> pytest"
set +e
$py -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests; a run that tests nothing is a failure" >&2
  exit 1
fi
exit "$status"
