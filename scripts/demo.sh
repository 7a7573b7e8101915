#!/usr/bin/env bash
# The main job on embedded defaults: install, ingest the sample corpus, start the local vLLM
# server (CPU, packaged gemma-3-270m) and the API, then ask sample questions over HTTP.
# The servers keep running afterwards; `scripts/demo.sh stop` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=data/run
logs=data/logs
llm_port="${RAG_LLM_SERVER__PORT:-8000}"
api_port="${RAG_API__PORT:-8080}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export RAG_LLM__BASE_URL="${RAG_LLM__BASE_URL:-http://127.0.0.1:$llm_port/v1}"
# The packaged demo model is a small BASE model that repeats itself after its first line:
# keep its answers to one line. An instruct model needs neither setting.
export RAG_LLM__STOP="${RAG_LLM__STOP:-[\"\\n\"]}" RAG_LLM__MAX_TOKENS="${RAG_LLM__MAX_TOKENS:-64}"
# Guided JSON answers need an instruct model: forced into the schema, the 270M base model filled it with
# digits (5 of 5 sample questions escalated, against 1 of 5 with free text), so the demo asks for text.
export RAG_LLM__STRUCTURED_OUTPUT="${RAG_LLM__STRUCTURED_OUTPUT:-off}"

stop() {
  for name in api llm; do
    if [ -f "$run_dir/$name.pid" ]; then
      pid="$(cat "$run_dir/$name.pid")"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$run_dir/$name.pid"
      echo "stopped $name (pid $pid)"
    fi
  done
}

wait_for() {  # URL SECONDS WHAT LOG
  .venv/bin/python - "$@" <<'PY'
import sys, time, httpx
url, seconds, what, log = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline, last = time.monotonic() + seconds, 0.0
while time.monotonic() < deadline:
    try:
        if httpx.get(url, timeout=2).status_code == 200:
            sys.exit(0)
    except httpx.HTTPError:
        pass
    if time.monotonic() - last > 30:
        print(f"    waiting for {what} ({int(deadline - time.monotonic())} s left; log: {log})", flush=True)
        last = time.monotonic()
    time.sleep(1)
sys.exit(f"error: {what} did not become ready in {int(seconds)} s; see {log}")
PY
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi

started=$(date +%s)
scripts/bootstrap.sh cpu
mkdir -p "$run_dir" "$logs"
stop >/dev/null

echo "==> ingesting samples/corpus"
.venv/bin/rag ingest samples/corpus/docs samples/corpus/policies samples/corpus/tickets --index data/index

echo "==> starting the vLLM server on :$llm_port (first run installs it and prepares the model: several minutes)"
setsid nohup .venv/bin/rag llm serve --port "$llm_port" >"$logs/llm.log" 2>&1 &
echo $! >"$run_dir/llm.pid"
wait_for "http://127.0.0.1:$llm_port/v1/models" 1800 "the vLLM server" "$logs/llm.log"

echo "==> creating the demo's API key (only its hash is stored, in data/api-keys.toml)"
(umask 077 && .venv/bin/rag keys create --name demo --scopes ask,feedback,metrics --replace --index data/index \
  >"$run_dir/api.key")
export RAG_API_KEY="$(cat "$run_dir/api.key")"

echo "==> starting the API on :$api_port"
setsid nohup .venv/bin/rag serve --index data/index --port "$api_port" >"$logs/api.log" 2>&1 &
echo $! >"$run_dir/api.pid"
wait_for "http://127.0.0.1:$api_port/ready" 300 "the API" "$logs/api.log"

for question in \
  "How many days do I have to return an item?" \
  "How long does it take the Aurora X2 headlamp to charge?" \
  "What is the warranty on the Cascade 2P tent?" \
  "Do you ship to Canada, and how much does it cost?"; do
  echo
  echo "Q: $question"
  .venv/bin/rag ask "$question" --server "http://127.0.0.1:$api_port"
done

echo
echo "Q: Is it waterproof?   (vague: the service asks which product)"
conversation="$(.venv/bin/rag ask "Is it waterproof?" --server "http://127.0.0.1:$api_port" --json \
  | .venv/bin/python -c 'import json, sys; reply = json.load(sys.stdin); print(reply["answer"], file=sys.stderr); print(reply["conversation_id"])')"
echo
echo "Q: The Aurora X2 headlamp.   (the reply, in the same conversation)"
.venv/bin/rag ask "The Aurora X2 headlamp." --conversation "$conversation" --server "http://127.0.0.1:$api_port"

echo
echo "Done in $(( $(date +%s) - started )) s. The API is still running at http://127.0.0.1:$api_port (docs: /docs),"
echo "the vLLM server at http://127.0.0.1:$llm_port/v1. The demo's API key is in $run_dir/api.key. Ask more with:"
echo "  RAG_API_KEY=\$(cat $run_dir/api.key) .venv/bin/rag ask \"Your question\" --server http://127.0.0.1:$api_port"
echo "  curl -H \"Authorization: Bearer \$(cat $run_dir/api.key)\" http://127.0.0.1:$api_port/metrics"
echo "Stop both with: scripts/demo.sh stop"
