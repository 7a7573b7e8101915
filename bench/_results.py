"""Writing a bench's figures where `python -m bench` collects them: bench/results/<name>.md (a table with the
machine it ran on), <name>.json (the raw numbers) and, when asked, <name>.png (a bar chart)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_LIBRARIES = ("torch", "sentence-transformers", "faiss-cpu", "faiss-gpu-cu12", "onnxruntime", "openvino", "ray",
              "langchain-community")


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model, cores this process may use, memory, GPU, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gib": memory_gib, "gpu": _gpu(),
            "python": platform.python_version(), "libraries": {name: v for name in _LIBRARIES if (v := _version(name))},
            "date": datetime.now(UTC).strftime("%Y-%m-%d")}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write(name: str, title: str, body: str, data: dict[str, Any], *, chart: Path | None = None) -> Path:
    """bench/results/<name>.md and .json; returns the Markdown file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    about = machine()
    described = (f"Measured {about['date']} on {about['cpu']}, {about['cores']} cores, {about['memory_gib']} GiB, "
                 f"GPU: {about['gpu'] or 'none'}; " + ", ".join(f"{k} {v}" for k, v in about["libraries"].items()))
    picture = f"\n\n![{title}]({chart.name})\n" if chart is not None else "\n"
    target = RESULTS / f"{name}.md"
    target.write_text(f"# {title}\n\n{described}.\n\n{body.strip()}\n{picture}", encoding="utf-8")
    own = data.get("machine", {})  # a bench's own details (threads, devices) join the common ones, date included
    merged = {**data, "machine": {**about, **own} if isinstance(own, dict) else about}
    (RESULTS / f"{name}.json").write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return target


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> Path | None:
    """bench/results/<name>.png, one bar per label; None when matplotlib (the bench extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 0.5 + 0.45 * len(labels)))
    axes.barh(list(labels)[::-1], list(values)[::-1], color="#4C72B0")
    axes.set_xlabel(unit)
    axes.set_title(title)
    for y, value in enumerate(list(values)[::-1]):
        axes.text(value, y, f" {value:,.1f}", va="center", fontsize=8)
    figure.tight_layout()
    target = RESULTS / f"{name}.png"
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _gpu() -> str | None:
    try:
        import torch

        return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else None
    except ImportError:
        return None
