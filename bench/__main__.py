"""Every performance bench in one command; the figures land in bench/results/ with the machine described.

    python -m bench [--quick] [--only embedders,ingest,retrieval,ann]

  embedders  torch vs ONNX Runtime vs OpenVINO, fp32 and int8: docs/s, query p50/p95, retrieval quality
             ratio (bench/embedders.py -> results/embedders.md)
  ingest     ingestion chunks/s, ours with each embedding backend vs the LangChain baseline
             (bench/ingest.py -> results/ingest.md, .png)
  retrieval  query embedding + search p50/p95, ours vs LangChain similarity_search (bench/retrieval.py ->
             results/retrieval.md)
  ann        Flat vs HNSW / IVF / SQ8 / PQ: QPS and recall@10 at several sizes (bench/ann.py -> results/ann.md, .png)

Each bench measures its baseline in the same run and prints ratios side by side; this command runs them one
after another (never together: they would share the cores they measure) and writes results/README.md, which
lists every bench's latest figures with the date they were measured (those not run now keep their earlier ones).
Needs the bench extra (LangChain baselines, matplotlib): pip install -e '.[cpu,bench,onnx]'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench._results import RESULTS, machine, markdown_table

BENCHES: dict[str, tuple[list[str], list[str]]] = {  # name -> (full run, --quick run) arguments
    "embedders": (["-m", "bench.embedders"], ["-m", "bench.embedders", "--quick"]),
    "ingest": (["-m", "bench.ingest", "--rounds", "2", "--backends",
                "sentence-transformers:fp32,onnx:fp32,onnx:int8,openvino:fp32,openvino:int8"],
               ["-m", "bench.ingest", "--rounds", "1", "--backends", "sentence-transformers:fp32,onnx:int8"]),
    "retrieval": (["-m", "bench.retrieval", "--sizes", "sample,100k", "--markdown"],
                  ["-m", "bench.retrieval", "--sizes", "sample", "--markdown"]),
    "ann": (["-m", "bench.ann"], ["-m", "bench.ann", "--quick"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds (minutes, not an hour)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated benches to run")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := sorted(set(chosen) - set(BENCHES)):
        parser.error(f"unknown bench {', '.join(unknown)}: choose from {', '.join(BENCHES)}")
    ran: dict[str, str] = {}
    for name in chosen:
        full, quick = BENCHES[name]
        print(f"==> {name}", flush=True)
        tick = time.perf_counter()
        status = subprocess.run([sys.executable, *(quick if args.quick else full)], check=False).returncode
        ran[name] = f"{'ok' if status == 0 else f'failed ({status})'} in {time.perf_counter() - tick:.0f} s" + (
            " (--quick)" if args.quick else "")
    rows = [[name, _measured(name), ran.get(name, "earlier run"), f"[{name}.md]({name}.md)"] for name in BENCHES]
    about = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = ["bench", "measured", "this run", "figures"]
    (RESULTS / "README.md").write_text(
        f"# Benchmarks\n\n`python -m bench` on {about['cpu']}, {about['cores']} cores, {about['memory_gib']} GiB, "
        f"GPU: {about['gpu'] or 'none'}; the latest figures of each bench.\n\n" + markdown_table(header, rows) + "\n",
        encoding="utf-8")
    print(markdown_table(header, rows))
    if any(not status.startswith("ok") for status in ran.values()):
        sys.exit(1)


def _measured(name: str) -> str:
    """The date in results/<name>.json, or '-' when that bench has never written one."""
    try:
        return str(json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))["machine"]["date"])
    except (OSError, ValueError, KeyError):
        return "-"


if __name__ == "__main__":
    main()
