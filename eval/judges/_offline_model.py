"""The offline judge's combiner: a logistic regression over the claim features, with its threshold.

Fitted by Newton's method (iteratively reweighted least squares) with an L2 penalty on the weights,
classes weighted to count equally: a few dozen features' worth of numpy, exact and deterministic. The
weights live in `offline_weights.json` beside this module, written by `python -m eval.judges.offline
--train`; a change of features or weights bumps the judge's version there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import ConfigError

__all__ = ["WEIGHTS_PATH", "LogisticModel", "fit_logistic"]

WEIGHTS_PATH = Path(__file__).with_name("offline_weights.json")
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogisticModel:
    """P(claim supported) = sigmoid(bias + weights . features); supported when P >= threshold."""

    version: int
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    training: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, rows: Matrix) -> Matrix:
        logits = rows @ np.asarray(self.weights, dtype=np.float64) + self.bias
        out: Matrix = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return out

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> LogisticModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["version"]), tuple(data["features"]), tuple(float(w) for w in data["weights"]),
                       float(data["bias"]), float(data["threshold"]), dict(data.get("training", {})))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the offline judge's weights at {path} ({exc}): "
                              "regenerate them with `python -m eval.judges.offline --train`") from exc

    def save(self, path: Path = WEIGHTS_PATH) -> None:
        data = {"version": self.version, "features": list(self.features), "weights": [round(w, 4) for w in self.weights],
                "bias": round(self.bias, 4), "threshold": round(self.threshold, 4), "training": self.training}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fit_logistic(rows: Matrix, labels: Sequence[int], *, l2: float = 1.0, steps: int = 50,
                 weights: Sequence[float] | None = None) -> tuple[Matrix, float]:
    """(weights, bias) maximising the class-balanced, optionally sample-weighted log-likelihood minus
    l2/2 * |weights|^2."""
    y = np.asarray(labels, dtype=np.float64)
    x = np.hstack([rows, np.ones((len(rows), 1))])
    given = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    share = float((given * y).sum() / given.sum())
    sample = given * np.where(y == 1, 0.5 / share, 0.5 / (1 - share))
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30.0, 30.0)))
        gradient = x.T @ (sample * (y - p)) - penalty * beta
        hessian = (x * (sample * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if float(np.abs(step).max()) < 1e-10:
            break
    return beta[:-1], float(beta[-1])
