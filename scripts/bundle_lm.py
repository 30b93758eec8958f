"""Turn a `tformer train-lm` run into a bundled character model (e.g. models/shakespeare-char-60).

    python scripts/bundle_lm.py runs/shakespeare-60 --out models/shakespeare-char-60

Copies the run's final model with its weights in float16 (loaded back as float32), its tokenizer, recipe, metrics,
curves and trainer samples; measures the validation loss of the weights as shipped on the whole validation text
(every character scored once, as `train-lm` does: with bf16 autocast where the CPU has it, and in float32) and the
loss by position within a window into results.json; writes `tformer generate "ROMEO:" --max-new-tokens 300
--temperature 0.8 --top-k 40 --seed S`'s continuations for seeds 1-3. The model card (README.md) is written by hand
from these files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from tformer.decoding.generate import GenerationConfig
from tformer.decoding.stepwise import continue_text
from tformer.devices import cpu_has_bf16
from tformer.evaluation.language_model import loss_by_position, position_buckets, windowed_loss
from tformer.models.causal_lm import CausalLM
from tformer.text.chars import CharTokenizer
from tformer.training import checkpoint as ckpt
from tformer.training.lm import LMRecipe
from tformer.training.metrics import METRICS, MetricsLog

RUN_FILES = ("recipe.json", METRICS, "curves.png", "samples.txt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the run's output folder (holding final/)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    final = args.run / "final"
    recipe = LMRecipe.from_file(args.run / "recipe.json")
    with ckpt.staged_folder(args.out) as build:
        CausalLM.from_pretrained(final).save_pretrained(build, dtype=torch.float16)
        shutil.copy(final / "tokenizer.json", build / "tokenizer.json")
        for name in RUN_FILES:
            if (args.run / name).is_file():
                shutil.copy(args.run / name, build / name)

        model = CausalLM.from_pretrained(build)
        tokenizer = CharTokenizer.from_pretrained(build)
        text = recipe.data.path().read_text(encoding="utf-8")
        val_ids = torch.tensor(tokenizer.encode(text[recipe.data.cut(text):]))
        bf16 = recipe.train.bf16 and cpu_has_bf16()
        results = {
            "val_loss": windowed_loss(model, val_ids, bf16=bf16),
            "val_loss_float32": windowed_loss(model, val_ids),
            "val_loss_by_position": position_buckets(loss_by_position(model, val_ids, bf16=bf16)),
            **MetricsLog(args.run / METRICS).training_time(),
            "measured_on": "the whole validation text (last 10%), float16 weights as shipped, "
                           + ("bf16 autocast" if bf16 else "float32"),
        }
        (build / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        for seed in (1, 2, 3):
            config = GenerationConfig(max_new_tokens=300, temperature=0.8, top_k=40, seed=seed)
            sample = "".join(p for p, _ in continue_text(model, tokenizer, tokenizer.encode("ROMEO:"), config))
            (build / f"sample_romeo_seed{seed}.txt").write_text("ROMEO:" + sample + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
    print(json.dumps(results, indent=2))
    print(f"{args.out}: {size:.1f} MB")


if __name__ == "__main__":
    main()
