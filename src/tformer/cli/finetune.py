"""`tformer finetune`: fine-tune a pretrained BERT encoder (default MiniLM) as a text classifier."""

from __future__ import annotations

import argparse

from tformer.cli.numbers import fraction, non_negative_float, non_negative_int, positive_float, positive_int
from tformer.training.finetune import BEST, DEFAULT_OUT, FinetuneConfig

HELP = "Fine-tune a pretrained BERT encoder as a text classifier (default: MiniLM on SST-2 sentiment)."


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = FinetuneConfig()
    p = sub.add_parser(
        "finetune", help=HELP,
        description=HELP + f" Evaluates accuracy and macro-F1 on the development set after every epoch and keeps "
        f"the best model in OUT/{BEST} (default {DEFAULT_OUT}/{BEST}, where `tformer classify` looks for it); "
        "that folder also loads in Hugging Face transformers. Training data: a preset, a folder with train.* and "
        "dev.* files, or --train/--dev files. File formats: .txt lines 'LABEL TEXT'; .tsv/.csv with a header "
        "naming a 'sentence' or 'text' column and a 'label' column (.gz allowed). Recipe: docs/finetune-sst2.md.",
    )
    p.add_argument("--model", default=d.model, help="pretrained checkpoint folder or short name (default: "
                   "%(default)s = sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--data", default=d.data, help="dataset: 'glue' (SST-2, 67,349 training phrases), 'sst2' "
                   "(6,920 training sentences), or a folder with train.* and dev.* (default: %(default)s)")
    p.add_argument("--train", dest="train_file", metavar="FILE", help="training file (with --dev; overrides --data)")
    p.add_argument("--dev", dest="dev_file", metavar="FILE", help="development file evaluated after each epoch")
    p.add_argument("--data-root", help="where the presets live (default: $TFORMER_DATA or ../shared/data)")
    p.add_argument("--out", default=d.out, help="output folder; the best model goes to OUT/best (default: "
                   "%(default)s)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the training data (default: "
                   "%(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="examples per update (default: %(default)s)")
    p.add_argument("--eval-batch-size", type=positive_int, default=d.eval_batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="peak AdamW learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay,
                   help="AdamW weight decay, not applied to "
                   "biases and LayerNorm (default: %(default)s)")
    p.add_argument("--warmup-ratio", type=fraction, default=d.warmup_ratio, help="fraction of the steps spent "
                   "warming the learning rate up linearly; it then decays linearly to 0 (default: %(default)s)")
    p.add_argument("--max-grad-norm", type=non_negative_float, default=d.max_grad_norm,
                   help="clip the gradient norm to this; "
                   "0 = no clipping (default: %(default)s)")
    p.add_argument("--max-length", type=positive_int, default=d.max_length, help="tokens per text; longer texts are "
                   "truncated (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed,
                   help="random seed for the head and data order (default: "
                   "%(default)s)")
    p.add_argument("--freeze-encoder", action="store_true", help="train the classification head only (dropout + "
                   "linear); the embeddings, encoder layers and pooler stay as loaded")
    p.add_argument("--freeze-word-embeddings", action="store_true", help="full fine-tuning except the word "
                   "embeddings (the largest matrix): the run can be bundled as an adapter, every other parameter "
                   "in float16 over the base encoder (scripts/bundle_classifier.py --adapter)")
    p.add_argument("--lora", action="store_true", help="LoRA: keep the encoder frozen and train small low-rank "
                   "adapters on its linear layers, with the head and pooler; OUT/best then stores only those "
                   "(a few MB: lora.json, lora.safetensors), merged onto --model when loaded")
    p.add_argument("--lora-rank", type=positive_int, default=d.lora_rank, help="rank of each adapter (default: "
                   "%(default)s)")
    p.add_argument("--lora-alpha", type=positive_float, default=d.lora_alpha, help="adapter scale numerator: the "
                   "update is alpha/rank * B A x (default: %(default)s)")
    p.add_argument("--lora-targets", default=d.lora_targets, help="layers that get adapters: attention (query/key/"
                   "value and output projections), ffn (feed-forward layers), all, or a comma list of layer names "
                   "in_proj,out_proj,linear1,linear2 (default: %(default)s)")
    p.add_argument("--max-minutes", type=positive_float, help="stop training after this many minutes, then "
                   "evaluate and save")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many updates, then evaluate and save (for a "
                   "quick check of the whole pipeline)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=d.precision, help="bf16: products "
                   "in bfloat16 under autocast (weights and optimizer stay float32); auto: bf16 on a GPU or on a "
                   "CPU with bfloat16 instructions, else fp32 (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.training.finetune import finetune

    config = FinetuneConfig(**{name: getattr(args, name) for name in FinetuneConfig.__dataclass_fields__
                               if hasattr(args, name)})
    result = finetune(config, progress=not args.no_progress, overwrite=args.overwrite)
    m = result.best_metrics
    print(f"{result.best}\taccuracy {m['accuracy']:.4f}\tmacro-F1 {m['macro_f1']:.4f}")
    return 0
