"""Fine-tuning a pretrained BERT encoder for extractive question answering on SQuAD-format data.

The recipe of Devlin et al. (2019, section 4.2): a start/end span head on every token, contexts cut into
overlapping windows, AdamW with weight decay on matrices only, linear warm-up then linear decay. A time budget
(``max_minutes``) shortens the schedule so that the decay still ends at zero. The word embeddings can stay frozen
(the default): then the model differs from its base only in the layers and the head, which are saved as a small
float16 adapter (``OUT/adapter``) next to the full Hugging Face folder (``OUT/best``).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from tformer.data.batching import length_grouped_batches
from tformer.data.squad import SquadExample, Window, make_windows, read_squad, squad_path
from tformer.devices import use_bf16
from tformer.errors import ConfigError
from tformer.evaluation.squad import squad_metrics
from tformer.models.bert_qa import BertForQuestionAnswering
from tformer.models.config import JsonConfig, require_positive
from tformer.models.qa_pipeline import QuestionAnswerer, collate
from tformer.text.pretrained import Tokenizer
from tformer.training.checkpoint import commit_folder, remove_leftovers, staging_dir, write_json_atomic
from tformer.training.lock import LOCK_FILE, OutputLock
from tformer.training.metrics import METRICS, MetricsLog, log
from tformer.training.optim import param_groups
from tformer.training.schedule import linear_warmup_decay_factor

DEFAULT_OUT = "runs/squad-minilm"
BEST, ADAPTER = "best", "adapter"
RESULTS = "eval_results.json"
RECIPE = "finetune_qa_config.json"
FROZEN = ("bert.embeddings.tokens.weight",)  # the word embeddings: the largest matrix, and the one left frozen


@dataclass
class QAFinetuneConfig(JsonConfig):
    """Everything a question-answering fine-tuning run depends on. Defaults: MiniLM on the shared SQuAD v1.1."""

    model: str = "minilm"  # checkpoint folder or short name
    train_file: str | None = None  # default: squad-v1.1/train.json.gz under the data folder
    dev_file: str | None = None  # default: squad-v1.1/dev.json.gz
    data_root: str | None = None
    out: str = DEFAULT_OUT
    epochs: int = 2
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 256  # tokens per window
    doc_stride: int = 128  # context tokens between window starts
    max_question_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20
    freeze_word_embeddings: bool = True
    attention_dropout: float | None = 0.0  # None: the checkpoint's; 0 lets attention take PyTorch's fused kernel
    precision: str = "auto"  # "bf16" autocast, "fp32", or "auto": bf16 on a GPU or a CPU with bfloat16 instructions
    seed: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None  # training time budget; the schedule is shortened to fit it
    max_train_examples: int | None = None  # use the first N training questions (smoke tests)
    max_dev_examples: int | None = None
    eval_each_epoch: bool = False  # also score the dev questions after every epoch (logged only; the last model ships)
    threads: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        require_positive(self, "epochs", "batch_size", "eval_batch_size", "max_length", "doc_stride",
                         "max_question_length", "max_answer_length", "n_best")
        for name in ("max_steps", "max_train_examples", "max_dev_examples"):
            if getattr(self, name) is not None:
                require_positive(self, name)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be > 0, got {self.max_minutes}")
        for name in ("lr", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.attention_dropout is not None and not 0.0 <= self.attention_dropout < 1.0:
            raise ConfigError(f"attention_dropout must be in [0, 1), got {self.attention_dropout}")
        if self.max_question_length + 4 > self.max_length:
            raise ConfigError(f"max_length {self.max_length} leaves no room for context after "
                              f"max_question_length {self.max_question_length}")

    def files(self) -> tuple[Path, Path]:
        return (Path(self.train_file) if self.train_file else squad_path("train", self.data_root),
                Path(self.dev_file) if self.dev_file else squad_path("dev", self.data_root))


@dataclass
class QAFinetuneResult:
    best: Path
    metrics: dict[str, float]
    history: list[dict] = field(default_factory=list)


def training_windows(examples: list[SquadExample], tokenizer: Tokenizer, c: QAFinetuneConfig) -> list[Window]:
    """Every window of every training question, labelled with the first reference answer's tokens."""
    out = []
    for i, ex in enumerate(examples):
        answer = (ex.answer_starts[0], ex.answers[0]) if ex.answers else None
        out += make_windows(tokenizer, ex.question, ex.context, c.max_length, c.doc_stride, c.max_question_length,
                            answer, example=i)
    return out


def set_attention_dropout(model: BertForQuestionAnswering, p: float) -> None:
    """Dropout on the attention weights, in the config (saved with the model) and in every attention module."""
    from tformer.nn import MultiHeadAttention

    model.config.attention_dropout = p
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.dropout = p


class QAFinetuner:
    """Runs one fine-tuning job described by a ``QAFinetuneConfig`` (one process, CPU or one GPU)."""

    def __init__(self, config: QAFinetuneConfig, progress: bool = True, overwrite: bool = False) -> None:
        self.config = c = config
        self.progress = progress
        self.out = Path(c.out)
        self.lock = OutputLock(self.out).acquire()  # one run per output folder, until train() ends
        remove_leftovers(self.out)  # staging folders of a run that was killed
        if any(p.name != LOCK_FILE for p in self.out.iterdir()) and not overwrite:
            self.lock.release()
            raise FileExistsError(f"output folder {self.out} is not empty; choose another --out or pass --overwrite")
        if c.threads:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.seed)
        train_file, dev_file = c.files()
        self.train_examples = read_squad(train_file)[: c.max_train_examples]
        self.dev_examples = read_squad(dev_file)[: c.max_dev_examples]
        if not self.train_examples or not self.dev_examples:
            raise ConfigError(f"no questions in {train_file if not self.train_examples else dev_file}")
        self.tokenizer = Tokenizer.from_pretrained(c.model)
        self.device = torch.device(c.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = BertForQuestionAnswering.from_pretrained(c.model).to(self.device)
        if c.attention_dropout is not None:
            set_attention_dropout(self.model, c.attention_dropout)
        self.bf16 = use_bf16(c.precision, self.device)
        for name, p in self.model.named_parameters():  # the pooler is unused by the span head
            p.requires_grad_(not name.startswith("bert.pooler.") and not (c.freeze_word_embeddings and name in FROZEN))
        self.windows = training_windows(self.train_examples, self.tokenizer, c)
        self.total_steps = math.ceil(len(self.windows) / c.batch_size) * c.epochs
        if c.max_steps is not None:
            self.total_steps = min(self.total_steps, c.max_steps)
        self.planned_steps = self.total_steps
        self.warmup_steps = round(c.warmup_ratio * self.total_steps)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, c.weight_decay), lr=c.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: linear_warmup_decay_factor(step, self.warmup_steps, self.total_steps)
        )
        self.step = 0

    def _fit_to_budget(self, elapsed: float) -> None:
        """Shorten (never lengthen past the plan) the schedule so it ends within ``max_minutes``."""
        budget = self.config.max_minutes * 60
        per_step = elapsed / self.step
        fits = self.step + int(max(0.0, budget - elapsed) / per_step)
        first = self.total_steps == self.planned_steps
        self.total_steps = max(self.step, min(self.planned_steps, fits))
        if first:
            self.warmup_steps = min(self.warmup_steps, round(self.config.warmup_ratio * self.total_steps))

    def train(self) -> QAFinetuneResult:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        metrics_log = MetricsLog(self.out / METRICS)
        metrics_log.clear()
        c.to_json(self.out / RECIPE)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        log(f"fine-tuning {c.model} for question answering on {len(self.train_examples)} questions "
            f"({len(self.windows)} windows of <= {c.max_length} tokens), {trainable:,} trainable parameters, "
            f"up to {self.total_steps} steps on {self.device}{' (bfloat16 autocast)' if self.bf16 else ''}"
            + (f" within {c.max_minutes} minutes" if c.max_minutes else ""))
        lengths = [len(w.input_ids) for w in self.windows]
        bar = tqdm(total=self.total_steps, disable=not self.progress, unit="step", dynamic_ncols=True)
        start, running = time.perf_counter(), None
        self.model.train()
        for epoch in range(1, c.epochs + 1):
            for index in length_grouped_batches(lengths, c.batch_size, c.seed, epoch):
                if self.step >= self.total_steps:
                    break
                batch = collate([self.windows[i] for i in index], self.tokenizer.pad_id, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    loss = self.model(**batch).loss  # products in bfloat16, norms/softmax/loss in float32
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
                if c.max_minutes and (self.step == 10 or self.step % 50 == 0):
                    self._fit_to_budget(time.perf_counter() - start)
                    bar.total = self.total_steps
                bar.set_postfix(loss=f"{running:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}", epoch=epoch)
                bar.update(1)
            if c.eval_each_epoch and epoch < c.epochs and self.step < self.total_steps:
                self._log_epoch(metrics_log, epoch, running, time.perf_counter() - start)
        bar.close()
        train_s = time.perf_counter() - start
        metrics = self.evaluate()
        row = {"step": self.step, "epochs_seen": round(self.step * c.batch_size / len(self.windows), 3),
               "train_loss": running, "train_minutes": round(train_s / 60, 2), **metrics}
        log(f"step {self.step}: dev exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f} "
            f"({metrics['questions']} questions); trained {train_s / 60:.1f} min")
        metrics_log.append(row)
        self.save(self.out / BEST, row)
        if c.freeze_word_embeddings:
            self.save_adapter(self.out / ADAPTER, row)
        self.lock.release()
        return QAFinetuneResult(self.out / BEST, row, [row])

    def _log_epoch(self, metrics_log: MetricsLog, epoch: int, running: float | None, elapsed: float) -> None:
        metrics = self.evaluate()
        metrics_log.append({"step": self.step, "epoch": epoch, "train_loss": running,
                            "train_minutes": round(elapsed / 60, 2), **metrics})
        log(f"epoch {epoch} (step {self.step}): dev exact match {metrics['exact_match']:.2f}, "
            f"F1 {metrics['f1']:.2f}")

    @torch.no_grad()
    def predict(self, examples: list[SquadExample]) -> dict[str, str]:
        """Question id -> best answer text, decoded as ``QuestionAnswerer`` does."""
        c = self.config
        self.model.eval()
        qa = QuestionAnswerer(self.model, self.tokenizer, c.max_length, c.doc_stride, c.max_answer_length, c.n_best)
        windows = []
        for i, ex in enumerate(examples):
            windows += make_windows(self.tokenizer, ex.question, ex.context, c.max_length, c.doc_stride,
                                    c.max_question_length, example=i)
        logits = qa.logits(windows, c.eval_batch_size)
        by_example: dict[int, list[int]] = {}
        for k, w in enumerate(windows):
            by_example.setdefault(w.example, []).append(k)
        predictions = {}
        for i, ex in enumerate(examples):
            ks = by_example.get(i, [])
            local = [Window(**{**w.__dict__, "example": 0}) for w in (windows[k] for k in ks)]
            spans = qa.decode(local, [logits[k] for k in ks], [ex.context])
            predictions[ex.id] = spans[0].text if spans else ""
        self.model.train()
        return predictions

    def evaluate(self) -> dict[str, float]:
        """Official SQuAD v1.1 exact match and F1 (percent) on the development questions."""
        predictions = self.predict(self.dev_examples)
        return squad_metrics(predictions, {ex.id: ex.answers for ex in self.dev_examples})

    def save(self, folder: Path, metrics: dict) -> None:
        """Model, tokenizer, recipe and metrics into ``folder`` atomically (a crash leaves the old one)."""
        stage = staging_dir(folder)
        try:
            self.model.save_pretrained(stage)
            self.tokenizer.save_pretrained(stage)
            self.config.to_json(stage / RECIPE)
            write_json_atomic(stage / RESULTS, metrics)
            commit_folder(stage, folder)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def save_adapter(self, folder: Path, metrics: dict) -> None:
        """The trained parameters only (all but the frozen word embeddings and the unused pooler), float16."""
        names = [n for n, p in self.model.named_parameters()
                 if p.requires_grad and not n.startswith("bert.pooler.")]
        stage = staging_dir(folder)
        try:
            self.model.save_adapter(stage, self.config.model, names)
            self.config.to_json(stage / RECIPE)
            write_json_atomic(stage / RESULTS, metrics)
            commit_folder(stage, folder)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def finetune_qa(config: QAFinetuneConfig, progress: bool = True, overwrite: bool = False) -> QAFinetuneResult:
    """Fine-tune as ``config`` says; returns the saved folder and its development-set metrics."""
    return QAFinetuner(config, progress=progress, overwrite=overwrite).train()
