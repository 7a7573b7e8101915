"""Process plumbing for the vLLM server manager: environments, logs, process groups."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from contextlib import suppress
from pathlib import Path
from typing import Literal

__all__ = ["child_env", "detect_device", "group_alive", "last_error_line", "read_json", "reap_group", "signal_group", "tail"]


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note when there is none."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError:
        return f"(no log at {path})"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for vLLM's interpreter: ours without the app's Python path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update({"PYTHONUNBUFFERED": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
    env.update(extra or {})
    return env


def detect_device() -> Literal["cpu", "cuda"]:
    """'cuda' when nvidia-smi lists a GPU, else 'cpu'."""
    if shutil.which("nvidia-smi") is None:
        return "cpu"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    return "cuda" if out.returncode == 0 and "GPU" in out.stdout else "cpu"


def last_error_line(tail: str) -> str:
    """The line of a log tail that names the failure, e.g. ``OSError: ...``."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line)]
    return (errors or lines or ["the log is empty"])[-1]


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def reap_group(pgid: int, grace_s: float) -> None:
    """Give leftover children in the group a moment, then SIGKILL them."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.1)
    signal_group(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """True while a non-zombie process of the group exists."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if sys.platform != "linux":
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
