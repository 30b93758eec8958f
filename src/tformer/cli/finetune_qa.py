"""`tformer finetune-qa`: fine-tune a pretrained BERT encoder (default MiniLM) for extractive question answering."""

from __future__ import annotations

import argparse

from tformer.cli.numbers import fraction, non_negative_float, non_negative_int, positive_float, positive_int
from tformer.training.finetune_qa import ADAPTER, BEST, QAFinetuneConfig

HELP = "Fine-tune a pretrained BERT encoder to find answer spans in a text (default: MiniLM on SQuAD v1.1)."


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = QAFinetuneConfig()
    p = sub.add_parser(
        "finetune-qa", help=HELP,
        description=HELP + " Each question and its context become windows of --max-length tokens ([CLS] question "
        "[SEP] part of the context [SEP]), consecutive windows --doc-stride tokens apart; the model learns to "
        "point at the answer's first and last token. After training it reports SQuAD exact match and F1 on the "
        f"development questions and writes OUT/{BEST} (a Hugging Face folder) and, with the word embeddings frozen "
        f"(default), OUT/{ADAPTER}: only the trained parameters in float16, loaded on top of --model. "
        "Data: SQuAD v1.1 JSON (.json or .json.gz). Recipe and results: docs/qa.md.",
    )
    p.add_argument("--model", default=d.model, help="pretrained checkpoint folder or short name (default: "
                   "%(default)s = sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--train", dest="train_file", metavar="FILE", help="training questions (default: "
                   "squad-v1.1/train.json.gz under the data folder: 7,867 questions)")
    p.add_argument("--dev", dest="dev_file", metavar="FILE", help="development questions scored at the end "
                   "(default: squad-v1.1/dev.json.gz: 972 questions)")
    p.add_argument("--data-root", help="where the data folder is (default: $TFORMER_DATA or ../shared/data)")
    p.add_argument("--out", default=d.out, help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the training windows (default: "
                   "%(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="windows per update (default: %(default)s)")
    p.add_argument("--eval-batch-size", type=positive_int, default=d.eval_batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="peak AdamW learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay,
                   help="AdamW weight decay, not on biases "
                   "and LayerNorm (default: %(default)s)")
    p.add_argument("--warmup-ratio", type=fraction, default=d.warmup_ratio, help="fraction of the steps warming the "
                   "learning rate up; it then decays linearly to 0 (default: %(default)s)")
    p.add_argument("--max-grad-norm", type=non_negative_float, default=d.max_grad_norm,
                   help="gradient clipping; 0 = none "
                   "(default: %(default)s)")
    p.add_argument("--max-length", type=positive_int, default=d.max_length,
                   help="tokens per window (default: %(default)s)")
    p.add_argument("--doc-stride", type=positive_int, default=d.doc_stride, help="context tokens between the starts of "
                   "overlapping windows (default: %(default)s)")
    p.add_argument("--max-question-length", type=positive_int, default=d.max_question_length,
                   help="question tokens kept "
                   "(default: %(default)s)")
    p.add_argument("--max-answer-length", type=positive_int, default=d.max_answer_length,
                   help="longest answer in tokens "
                   "when decoding (default: %(default)s)")
    p.add_argument("--n-best", type=positive_int, default=d.n_best, help="start and end candidates paired per window "
                   "(default: %(default)s)")
    p.add_argument("--train-word-embeddings", dest="freeze_word_embeddings", action="store_false",
                   help="also train the word embeddings (then no small adapter is written)")
    p.add_argument("--attention-dropout", type=fraction, default=d.attention_dropout, help="dropout on attention "
                   "weights while fine-tuning; 0 lets attention use PyTorch's fused kernel (default: %(default)s)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=d.precision, help="bf16: products "
                   "in bfloat16 under autocast (weights and optimizer stay float32); auto: bf16 on a GPU or on a "
                   "CPU with bfloat16 instructions, else fp32 (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help="(default: %(default)s)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many updates")
    p.add_argument("--max-minutes", type=positive_float,
                   help="training time budget in minutes; the learning-rate schedule "
                   "is shortened to end within it (evaluation comes after)")
    p.add_argument("--max-train-examples", type=positive_int, help="use only the first N training questions")
    p.add_argument("--max-dev-examples", type=positive_int, help="score only the first N development questions")
    p.add_argument("--eval-each-epoch", action="store_true", help="also score the development questions after "
                   "every epoch (logged to metrics.jsonl; the model of the last epoch is the one saved)")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tformer.training.finetune_qa import finetune_qa

    config = QAFinetuneConfig(**{name: getattr(args, name) for name in QAFinetuneConfig.__dataclass_fields__
                                 if hasattr(args, name)})
    result = finetune_qa(config, progress=not args.no_progress, overwrite=args.overwrite)
    m = result.metrics
    print(f"{result.best}\texact match {m['exact_match']:.2f}\tF1 {m['f1']:.2f}")
    return 0
