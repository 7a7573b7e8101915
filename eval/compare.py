"""`rag eval compare`: a release against the last one, metric by metric, with the cases that flipped.

Both files are runs (`rag eval run`) or score files (`rag eval score`). Metrics are compared on the
cases both have (paired by id) where both have a value; the delta is current - baseline, with a 95%
confidence interval from a paired bootstrap (resampling cases; seeded, so the same files give the same
interval). A metric regresses when it moves the bad way by more than its tolerance: down for scores,
up for latency. Default tolerances gate the quality metrics (0.05; safety and completed: 0, any
drop fails); latency is gated only when asked (`--max-drop latency_p95_ms=500`: may rise 500 ms).
Scores from different judges are not comparable, so a judge change is refused unless allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import percentile
from eval.scoring import HIGHER_IS_BETTER, METRICS
from rag.errors import InputError

__all__ = ["DEFAULT_MAX_DROP", "Comparison", "MetricDelta", "compare", "load_scored", "parse_max_drop"]

DEFAULT_MAX_DROP: dict[str, float] = {**dict.fromkeys(METRICS, 0.05), "safety": 0.0, "completed": 0.0}
_FORMATS = ("rag-eval-run/1", "rag-eval-scores/1")
_LATENCY = {"latency_p50_ms": 50, "latency_p95_ms": 95}


@dataclass(frozen=True, slots=True)
class MetricDelta:
    name: str
    cases: int
    baseline: float
    current: float
    low: float  # the 95% interval of the delta
    high: float
    tolerance: float | None  # None: not gated

    @property
    def delta(self) -> float:
        return self.current - self.baseline

    @property
    def regressed(self) -> bool:
        if self.tolerance is None:
            return False
        worse = self.delta if not HIGHER_IS_BETTER.get(self.name, True) else -self.delta
        return worse > self.tolerance + 1e-9


@dataclass(frozen=True, slots=True)
class Comparison:
    metrics: tuple[MetricDelta, ...]
    flips: tuple[tuple[str, str, str], ...]  # (case id, what flipped, "better" | "worse")
    only_baseline: tuple[str, ...] = ()
    only_current: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def regressions(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.regressed]


def load_scored(path: Path) -> dict[str, Any]:
    """A run or score file, checked enough that comparing it makes sense."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} not found: pass a file written by `rag eval run` or `rag eval score`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable JSON file ({exc}): pass a file written by `rag eval run`") from exc
    if not isinstance(data, dict) or data.get("format") not in _FORMATS or not isinstance(data.get("items"), list):
        raise InputError(f"{path} is not an eval run or score file (format {', '.join(_FORMATS)}): "
                         "write one with `rag eval run SUITE --out run.json`")
    return data


def parse_max_drop(values: Sequence[str]) -> dict[str, float]:
    """`METRIC=VALUE` options as tolerances over the defaults; unknown metrics and bad values are errors."""
    known = [*METRICS, *_LATENCY, "ndcg@10", "recall@10", "mrr@10"]
    tolerances = dict(DEFAULT_MAX_DROP)
    for value in values:
        name, _, number = value.partition("=")
        try:
            tolerance = float(number)
        except ValueError:
            raise InputError(f"--max-drop {value!r}: write METRIC=VALUE, e.g. faithfulness=0.05") from None
        if name not in known or tolerance < 0:
            raise InputError(f"--max-drop {value!r}: the metric must be one of {', '.join(known)} and the "
                             "tolerance 0 or more")
        tolerances[name] = tolerance
    return tolerances


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any], *, max_drop: Mapping[str, float] | None = None,
            allow_judge_change: bool = False, resamples: int = 2000, seed: int = 0) -> Comparison:
    """Every metric both files have, paired by case, with its bootstrap interval; and the cases that flipped."""
    judges = (baseline.get("judge", {}).get("id"), current.get("judge", {}).get("id"))
    if judges[0] != judges[1] and not allow_judge_change:
        raise InputError(f"the scores come from different judges ({judges[0]} vs {judges[1]}): they are not "
                         "comparable; re-run the baseline with the same --judge, or pass --allow-judge-change")
    old, new = _by_id(baseline), _by_id(current)
    common = [case for case in old if case in new]
    if not common:
        raise InputError("the two files have no case id in common: compare runs of the same suite")
    tolerances = DEFAULT_MAX_DROP if max_drop is None else max_drop
    rng = np.random.default_rng(seed)
    names = [n for n in _metric_names(baseline) if n in _metric_names(current)]
    deltas = [d for n in names if (d := _delta(n, old, new, common, tolerances.get(n), rng, resamples))]
    notes = (f"judges differ: {judges[0]} vs {judges[1]}",) if judges[0] != judges[1] else ()
    return Comparison(tuple(deltas), tuple(_flips(old, new, common)), tuple(c for c in old if c not in new),
                      tuple(c for c in new if c not in old), notes)


def _by_id(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(item["id"]): item for item in data["items"]}


def _metric_names(data: Mapping[str, Any]) -> list[str]:
    """The summary's metrics, in its order (a score file has faithfulness and relevance only)."""
    return list(data.get("summary", {}).get("metrics", {}))


def _delta(name: str, old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], common: list[str],
           tolerance: float | None, rng: np.random.Generator, resamples: int) -> MetricDelta | None:
    field_name = "latency_ms" if name in _LATENCY else name
    pairs = [(old[c][field_name], new[c][field_name]) for c in common
             if old[c].get(field_name) is not None and new[c].get(field_name) is not None]
    if not pairs:
        return None
    before, after = (np.array(side, dtype=float) for side in zip(*pairs, strict=True))
    statistic = _statistic(name)
    picks = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
    spread = [statistic(after[p]) - statistic(before[p]) for p in picks]
    low, high = np.percentile(spread, [2.5, 97.5])
    return MetricDelta(name, len(pairs), statistic(before), statistic(after), float(low), float(high), tolerance)


def _statistic(name: str) -> Callable[[np.ndarray], float]:
    if name in _LATENCY:
        q = _LATENCY[name]
        return lambda values: percentile(values.tolist(), q)
    return lambda values: float(values.mean())


def _flips(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]],
           common: list[str]) -> list[tuple[str, str, str]]:
    """Cases whose decision, verdict, safety or completion changed, worse ones first."""
    flips = []
    for case in common:
        before, after = old[case], new[case]
        for what, good in (("decision_accuracy", 1), ("verdict", "faithful"), ("safety", 1), ("completed", 1)):
            if before.get(what) is not None and after.get(what) is not None and before[what] != after[what]:
                label = f"{what}: {_shown(what, before)} -> {_shown(what, after)}"
                flips.append((case, label, "better" if after[what] == good else "worse"))
    return sorted(flips, key=lambda flip: flip[2] != "worse")


def _shown(what: str, item: Mapping[str, Any]) -> str:
    """A flipped field as a reader wants it: the decision itself rather than 0/1."""
    if what == "decision_accuracy":
        return f"{item.get('decision')} ({'right' if item[what] else 'wrong'})"
    return str(item[what])
