"""The LLM judge against the real vLLM server (CPU): guided decoding keeps the verdict JSON in shape
and the cache answers a re-run. The packaged 270M base model is a poor judge, so this checks the
plumbing (one verdict per claim, a relevance in range, no error, no second request), not the verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.claims import split_claims
from eval.judges import JudgeInput, get_judge
from rag.llm.server import VLLMServer

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

PASSAGES = ("You can return most items within 45 days of delivery. Opened electronics carry a 15% restocking fee.",)
ITEMS = [JudgeInput("a", "How long do I have to return an item?", PASSAGES, "You have 45 days to return it [1]."),
         JudgeInput("b", "Is there a fee?", PASSAGES, "Opened electronics cost 20% to return [1], and returns are free.")]


def test_the_llm_judge_follows_the_schema_on_real_vllm_and_caches(vllm: VLLMServer, tmp_path: Path) -> None:
    judge = get_judge("llm", base_url=vllm.base_url, model=vllm.served_model_name, cache=tmp_path / "verdicts.sqlite3")
    first = judge.judge(ITEMS)
    for item, judgement in zip(ITEMS, first, strict=True):
        print(f"\n{item.answer!r}: {judgement}")
        assert judgement.error is None
        assert [c.claim for c in judgement.claims] == split_claims(item.answer)
        assert judgement.faithfulness is not None and 0.0 <= judgement.faithfulness <= 1.0
        assert judgement.relevance in (0.0, 1 / 3, 2 / 3, 1.0)
    again = get_judge("llm", base_url="http://127.0.0.1:9/v1", model=vllm.served_model_name,
                      cache=tmp_path / "verdicts.sqlite3")
    assert again.judge(ITEMS) == first  # served from the cache: the dead address is never asked
