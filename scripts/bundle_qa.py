"""Turn a `tformer finetune-qa` run into the bundled QA reader (models/qa-minilm-squad).

    python scripts/bundle_qa.py runs/squad-minilm --out models/qa-minilm-squad

Copies the float16 adapter (``adapter.json`` naming the packaged MiniLM as its base, ``adapter.safetensors``), the
training recipe (whose window and decoding settings the reader uses) and the run's metrics. Measure what ships
with ``scripts/qa_benchmark.py --qa models/qa-minilm-squad`` (docs/qa.md, the model card).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tformer.models.adapter import ADAPTER_FILE, ADAPTER_WEIGHTS
from tformer.training.finetune_qa import ADAPTER, METRICS, RECIPE, RESULTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the run's output folder (holding adapter/)")
    ap.add_argument("--out", type=Path, default=Path("models/qa-minilm-squad"))
    args = ap.parse_args()
    adapter = args.run / ADAPTER
    args.out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((adapter / ADAPTER_FILE).read_text(encoding="utf-8"))
    meta["base"] = "minilm"  # the packaged encoder, whatever path the run was trained from
    (args.out / ADAPTER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    for name in (ADAPTER_WEIGHTS, RECIPE, RESULTS):
        shutil.copy(adapter / name, args.out / name)
    shutil.copy(args.run / METRICS, args.out / METRICS)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
    print(f"{args.out}: {size:.1f} MB")


if __name__ == "__main__":
    main()
