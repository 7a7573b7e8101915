"""The LLM judge: any OpenAI-compatible server (vLLM) checks each claim against the passages.

One request per answer, prompt `judge` (versioned in `prompts/`), temperature 0 and a fixed seed,
and, where the server supports it, a JSON schema that fixes the reply's shape: exactly one verdict
per claim, in order, and a relevance of 0-3. Verdicts are cached by (judge id, input) in SQLite
(`eval.judges.cache`), so a re-run asks the server only about answers it has not seen; the judge id
holds the model and the prompt version, so changing either starts afresh. A reply that is not the
JSON asked for makes that item's judgement an `error` (reported, never a silent score).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import prompts
from eval.claims import split_claims
from eval.judges.base import ClaimVerdict, JudgeInput, Judgement, Progress
from eval.judges.cache import VerdictCache, cache_key
from rag.errors import ConfigError, LLMError
from rag.grounding import MARKER
from rag.llm.openai_compatible import OpenAICompatibleLLM
from rag.types import Message

__all__ = ["LLMJudge", "build", "judge_schema"]

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def judge_schema(claims: int) -> dict[str, Any]:
    """The reply's shape: one verdict per claim (numbered 1..claims, in order) and a relevance 0-3."""
    verdict = {"type": "object", "additionalProperties": False, "required": ["claim", "reason", "supported"],
               "properties": {"claim": {"type": "integer", "enum": list(range(1, claims + 1))},
                              "reason": {"type": "string", "maxLength": 200}, "supported": {"type": "boolean"}}}
    return {"type": "object", "additionalProperties": False, "required": ["verdicts", "relevance"],
            "properties": {"verdicts": {"type": "array", "items": verdict, "minItems": claims, "maxItems": claims},
                           "relevance": {"type": "integer", "enum": [0, 1, 2, 3]}}}


class LLMJudge:
    """Judges through an OpenAI-compatible server; `concurrency` requests in flight at most."""

    def __init__(self, *, base_url: str, model: str, api_key: str = "EMPTY", prompt: prompts.PromptTemplate | None
                 = None, cache: VerdictCache | None = None, concurrency: int = 4, timeout_s: float = 120.0,
                 max_tokens: int = 512, seed: int = 0) -> None:
        if concurrency < 1:
            raise ConfigError(f"judge concurrency must be at least 1, got {concurrency}")
        self.prompt = prompt or prompts.load("judge")
        self.cache = cache
        self._client_options = {"base_url": base_url, "model": model, "api_key": api_key, "timeout_s": timeout_s,
                                "max_tokens": max_tokens, "temperature": 0.0, "seed": seed}
        self._concurrency = concurrency

    @property
    def id(self) -> str:
        return f"llm:{self._client_options['model']}:{self.prompt.id}"

    def judge(self, items: Sequence[JudgeInput], progress: Progress | None = None) -> list[Judgement]:
        """Judgements in order; cached ones are read back, the rest asked for concurrently.
        Runs its own event loop: call it from synchronous code (or a worker thread)."""
        return asyncio.run(self._judge_all(items, progress))

    async def _judge_all(self, items: Sequence[JudgeInput], progress: Progress | None) -> list[Judgement]:
        llm = OpenAICompatibleLLM(**self._client_options)  # type: ignore[arg-type]
        gate, done = asyncio.Semaphore(self._concurrency), 0

        async def one(item: JudgeInput) -> Judgement:
            nonlocal done
            async with gate:
                judgement = await self._judge_one(llm, item)
            done += 1
            if progress is not None:
                progress(done, len(items))
            return judgement

        try:
            return list(await asyncio.gather(*(one(item) for item in items)))
        finally:
            await llm.aclose()

    async def _judge_one(self, llm: OpenAICompatibleLLM, item: JudgeInput) -> Judgement:
        claims = split_claims(item.answer)
        if not claims:
            return Judgement(())
        sampling = {k: self._client_options[k] for k in ("max_tokens", "temperature", "seed")}  # not the address
        key = cache_key(self.id, {"question": item.question, "contexts": item.contexts, "answer": item.answer,
                                  "claims": claims, "sampling": sampling})
        reply = self.cache.get(key) if self.cache is not None else None
        if reply is None:
            try:
                reply = await llm.complete(self._messages(item, claims), schema=judge_schema(len(claims)))
            except LLMError as exc:
                return Judgement((), error=f"{type(exc).__name__}: {exc}")
        judgement = parse_verdicts(reply, claims)
        if judgement.error is None and self.cache is not None:
            self.cache.put(key, reply)  # only replies that parse: a bad one is asked for again next run
        return judgement

    def _messages(self, item: JudgeInput, claims: list[str]) -> list[Message]:
        passages = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(item.contexts, start=1)) or "(none)"
        numbered = "\n".join(f"{n}. {claim}" for n, claim in enumerate(claims, start=1))
        system, user = self.prompt.render(passages=passages, question=item.question,
                                          answer=MARKER.sub("", item.answer).strip(), claims=numbered)
        return [Message("system", system), Message("user", user)]


def parse_verdicts(reply: str, claims: list[str]) -> Judgement:
    """The judgement in a reply; an unusable reply gives no verdict and an error saying why."""
    try:
        data = json.loads(_JSON_OBJECT.search(reply).group(0))  # type: ignore[union-attr]
        verdicts = {int(v["claim"]): v for v in data["verdicts"]}
        found = [verdicts[n] for n in range(1, len(claims) + 1)]
        relevance = int(data["relevance"])
        if not 0 <= relevance <= 3 or not all(isinstance(v["supported"], bool) for v in found):
            raise ValueError("relevance outside 0-3 or a verdict that is not true/false")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        why = f"the judge's reply is not the verdict JSON asked for ({type(exc).__name__}: {exc}): {reply[:160]!r}"
        return Judgement((), error=why)
    return Judgement(tuple(ClaimVerdict(c, v["supported"], 1.0 if v["supported"] else 0.0, str(v.get("reason", "")))
                           for c, v in zip(claims, found, strict=True)), relevance=relevance / 3)


def build(*, base_url: str, model: str, api_key: str = "EMPTY", cache: Path | str | None = None,
          concurrency: int = 4, timeout_s: float = 120.0, prompt_version: str = "latest") -> LLMJudge:
    """The judge as `rag eval` builds it: `cache` is a SQLite file (None: no cache)."""
    return LLMJudge(base_url=base_url, model=model, api_key=api_key, prompt=prompts.load("judge", prompt_version),
                    cache=VerdictCache(cache) if cache is not None else None, concurrency=concurrency,
                    timeout_s=timeout_s)
