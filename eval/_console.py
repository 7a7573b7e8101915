"""What every `rag eval` command prints through: stdout for reports, stderr for progress and errors."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["console", "err", "progress"]

console = Console(width=max(Console().width, 120))  # tables stay readable in CI logs (80 columns otherwise)
err = Console(stderr=True)


def progress() -> Progress:
    """A transient bar on stderr: what is running, done of total, time so far."""
    columns = (TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=err, transient=True)
