"""Fine-tuning a pretrained BERT encoder for sequence classification (sentiment, topic, ...).

The classic recipe: a new head (dropout + linear) on the pooled output, AdamW with weight decay, linear warm-up
and decay of the learning rate, a few epochs; accuracy and macro-F1 on the development set after each epoch, and
the best checkpoint kept as a Hugging Face-compatible folder (``OUT/best``).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tformer.data.batching import length_grouped_batches
from tformer.data.classification import DatasetSpec, LabelledTexts, dataset_spec, label_ids, load_dataset
from tformer.devices import use_bf16
from tformer.errors import ConfigError
from tformer.evaluation.classification import classification_metrics
from tformer.models.bert import BertForSequenceClassification
from tformer.models.classifiers import is_lora_classifier, load_lora_classifier, read_lora_meta, save_lora_classifier
from tformer.models.config import JsonConfig, require_positive
from tformer.nn.lora import LoraConfig, add_lora, expand_targets, train_only
from tformer.pretrained import resolve_pretrained
from tformer.text.pretrained import Tokenizer
from tformer.training import distributed
from tformer.training.checkpoint import commit_folder, remove_leftovers, staging_dir, write_json_atomic
from tformer.training.lock import LOCK_FILE, OutputLock
from tformer.training.metrics import METRICS, MetricsCallback, MetricsLog, log
from tformer.training.optim import param_groups
from tformer.training.schedule import linear_warmup_decay_schedule

DEFAULT_OUT = "runs/sst2-minilm"  # `tformer classify` looks for DEFAULT_OUT/best
BEST = "best"
RESULTS = "eval_results.json"
RECIPE = "finetune_config.json"
LORA_ALSO_TRAINED = ("classifier.", "bert.pooler.")  # with --lora: the new head and the pooler under it


@dataclass
class FinetuneConfig(JsonConfig):
    """Everything a fine-tuning run depends on. Defaults: MiniLM on GLUE SST-2, BERT paper's fine-tuning recipe."""

    model: str = "minilm"  # checkpoint folder or short name
    data: str = "glue"  # preset (sst2, glue) or a folder with train.* and dev.*
    train_file: str | None = None  # explicit files override ``data``
    dev_file: str | None = None
    data_root: str | None = None  # where presets live (default: $TFORMER_DATA or ../shared/data)
    out: str = DEFAULT_OUT
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 0
    freeze_encoder: bool = False
    freeze_word_embeddings: bool = False  # train all but the word embeddings (bundled as an adapter over the base)
    lora: bool = False  # train LoRA adapters (+ head and pooler) instead of the whole encoder
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "all"  # attention, ffn, all, or layer names (in_proj, out_proj, linear1, linear2)
    max_steps: int | None = None  # stop early (smoke tests); evaluates and saves when it stops
    max_minutes: float | None = None  # stop training after this long, then evaluate and save
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    device: str | None = None  # "cpu", "cuda", ...; default: cuda when available
    precision: str = "fp32"  # "bf16" autocast, "fp32", or "auto": bf16 on a GPU or a CPU with bfloat16 instructions
    labels: list[str] = field(default_factory=list)  # filled from the training data

    def __post_init__(self) -> None:
        require_positive(self, "epochs", "batch_size", "eval_batch_size", "max_length")
        if self.max_steps is not None:
            require_positive(self, "max_steps")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.lora and self.freeze_encoder:
            raise ConfigError("choose --lora or --freeze-encoder, not both")
        if self.freeze_word_embeddings and (self.lora or self.freeze_encoder):
            raise ConfigError("--freeze-word-embeddings goes with full fine-tuning, not with --lora or "
                              "--freeze-encoder (which freeze the embeddings already)")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.lora:
            require_positive(self, "lora_rank")
            if not self.lora_alpha > 0:
                raise ConfigError(f"lora_alpha must be > 0, got {self.lora_alpha}")
            try:
                expand_targets(self.lora_targets)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        for name in ("lr", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if (self.train_file is None) != (self.dev_file is None):
            raise ConfigError("give both train_file and dev_file, or neither (then `data` names the dataset)")

    def dataset(self) -> DatasetSpec:
        if self.train_file is not None and self.dev_file is not None:
            return DatasetSpec(Path(self.train_file), Path(self.dev_file))
        return dataset_spec(self.data, self.data_root)

    def lora_config(self) -> LoraConfig:
        return LoraConfig(rank=self.lora_rank, alpha=self.lora_alpha, targets=expand_targets(self.lora_targets))


@dataclass
class FinetuneResult:
    best: Path  # the best checkpoint folder
    best_metrics: dict[str, float]
    history: list[dict] = field(default_factory=list)  # one row per evaluation


class Finetuner:
    """Runs one fine-tuning job described by a ``FinetuneConfig``.

    ``callbacks`` are called on rank 0 with the path of ``metrics.jsonl`` after each evaluation.
    """

    def __init__(
        self,
        config: FinetuneConfig,
        progress: bool = True,
        overwrite: bool = False,
        callbacks: Sequence[MetricsCallback] = (),
    ) -> None:
        self.config = c = config
        self.callbacks = list(callbacks)
        self.dist = distributed.setup(c.device or "auto")
        self.progress = progress and self.dist.is_main
        self.out = Path(c.out)
        self.metrics = MetricsLog(self.out / METRICS, enabled=self.dist.is_main)
        self.lock = OutputLock(self.out)  # held by rank 0 from here to the end of train(): one run per folder
        if self.dist.is_main:
            self.lock.acquire()
            remove_leftovers(self.out)  # staging folders of a run that was killed
            if any(p.name != LOCK_FILE for p in self.out.iterdir()) and not overwrite:
                self.lock.release()
                raise FileExistsError(f"output folder {self.out} is not empty; choose another --out or pass "
                                      "--overwrite")
        self.dist.barrier()
        if c.threads:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.seed)
        self.train_data, self.dev_data, labels = load_dataset(c.dataset())
        c.labels = labels
        self.train_ids = label_ids(self.train_data, labels)
        self.dev_ids = label_ids(self.dev_data, labels)
        self.tokenizer = Tokenizer.from_pretrained(c.model)
        self.device = self.dist.device if c.device is None or self.dist.enabled else torch.device(c.device)
        self.base = c.model  # what a LoRA classifier is stored on top of
        if c.lora and is_lora_classifier(resolve_pretrained(c.model)):
            self.model = self._continue_lora(labels)
        else:
            self.model = BertForSequenceClassification.from_pretrained(c.model, labels=labels)
        if c.freeze_encoder:
            self.model.bert.requires_grad_(False)
        if c.freeze_word_embeddings:
            self.model.bert.embeddings.tokens.weight.requires_grad_(False)
        if c.lora:
            if self.base == c.model:
                add_lora(self.model, c.lora_config())  # frozen base layers + zero-initialised adapters
            train_only(self.model, LORA_ALSO_TRAINED)
        self.model.to(self.device)
        self.bf16 = use_bf16(c.precision, self.device)  # products in bfloat16; norms, softmax and loss in float32
        torch.manual_seed(c.seed + self.dist.rank)  # same head init on every rank (above), own dropout masks
        self.ddp_model = DistributedDataParallel(self.model) if self.dist.enabled else self.model
        steps_per_epoch = math.ceil(math.ceil(len(self.train_data) / c.batch_size) / self.dist.world_size)
        self.total_steps = steps_per_epoch * c.epochs
        if c.max_steps is not None:
            self.total_steps = min(self.total_steps, c.max_steps)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, c.weight_decay), lr=c.lr)
        self.scheduler = linear_warmup_decay_schedule(
            self.optimizer, round(c.warmup_ratio * self.total_steps), self.total_steps
        )
        self.step = 0
        self.last_loss: float | None = None
        self.deadline = math.inf  # perf_counter() time when ``max_minutes`` runs out, set by ``train``

    def train(self) -> FinetuneResult:
        c = self.config
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.metrics.clear()
            c.to_json(self.out / RECIPE)
        log(f"fine-tuning {c.model} on {len(self.train_data)} examples ({self.train_data.source}), labels "
            f"{c.labels}, {self.total_steps} steps on {self.device}; dev: {len(self.dev_data)} examples")
        lengths = [len(ids) for ids in self.tokenizer.encode_batch(self.train_data.texts)]
        bar = tqdm(total=self.total_steps, disable=not self.progress, unit="step", dynamic_ncols=True)
        result = FinetuneResult(self.out / BEST, {})
        start = time.perf_counter()
        if c.max_minutes is not None:
            self.deadline = start + 60 * c.max_minutes
        for epoch in range(1, c.epochs + 1):
            batches = length_grouped_batches(lengths, c.batch_size, c.seed, epoch)
            batches = distributed.shard(batches, self.dist.rank, self.dist.world_size, 1)  # this rank's share
            seen = self._train_epoch(batches, bar)
            metrics = self.evaluate()
            row = {"epoch": epoch, "step": self.step, "examples": seen, **metrics,
                   "elapsed_s": round(time.perf_counter() - start, 1), "train_loss": self.last_loss}
            self._record(row, result)
            if self._out_of_budget():
                break
        bar.close()
        self.lock.release()
        return result

    def _train_epoch(self, batches: list[list[int]], bar: tqdm) -> int:
        c = self.config
        self.ddp_model.train()
        if c.freeze_encoder:
            self.model.bert.eval()  # a frozen encoder gives fixed features: no dropout inside it
        seen, running, start = 0, None, time.perf_counter()
        for index in batches:
            if self._out_of_budget():
                break
            batch = self.tokenizer([self.train_data.texts[i] for i in index], max_length=c.max_length)
            targets = torch.tensor([self.train_ids[i] for i in index], device=self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.ddp_model(**batch.to(self.device), labels=targets).loss  # DDP averages gradients
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            seen += len(index)
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            rate = seen / max(time.perf_counter() - start, 1e-9)  # training examples per second, this epoch
            bar.set_postfix(loss=f"{running:.4f}", ex_s=f"{rate:.1f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            bar.update(1)
        self.last_loss = running
        return seen

    def _continue_lora(self, labels: list[str]) -> BertForSequenceClassification:
        """A LoRA classifier folder as ``model``: its adapters (unmerged) and head train on; it is stored again on
        its own base, with its own LoRA settings."""
        c = self.config
        meta = read_lora_meta(resolve_pretrained(c.model))
        if meta["config"]["labels"] != labels:
            raise ConfigError(f"{c.model} was trained for labels {meta['config']['labels']}, the data has {labels}")
        c.lora_rank, c.lora_alpha = meta["lora"]["rank"], meta["lora"]["alpha"]
        c.lora_targets = ",".join(meta["lora"]["targets"])
        self.base = meta["base"]
        log(f"continuing the LoRA classifier {c.model} (on {self.base})")
        return load_lora_classifier(resolve_pretrained(c.model), merge=False)

    def _out_of_budget(self) -> bool:
        """Whether ``max_steps`` or ``max_minutes`` is used up (then the run evaluates, saves and stops)."""
        c = self.config
        return (c.max_steps is not None and self.step >= c.max_steps) or time.perf_counter() >= self.deadline

    @torch.no_grad()
    def evaluate(self, data: LabelledTexts | None = None, gold: list[int] | None = None) -> dict[str, float]:
        """Accuracy and macro-F1 on the development set (or on ``data`` with class ids ``gold``)."""
        data, gold = (self.dev_data, self.dev_ids) if data is None else (data, gold)
        self.model.eval()
        order = sorted(range(len(data)), key=lambda i: len(data.texts[i]))  # similar lengths: little padding
        order = order[self.dist.rank :: self.dist.world_size]  # each rank predicts a share
        mine: dict[int, int] = {}
        for first in range(0, len(order), self.config.eval_batch_size):
            index = order[first : first + self.config.eval_batch_size]
            batch = self.tokenizer([data.texts[i] for i in index], max_length=self.config.max_length)
            mine.update(zip(index, self.model(**batch.to(self.device)).logits.argmax(dim=-1).tolist()))
        predicted = [0] * len(data)
        for part in self.dist.all_gather_objects(mine):
            for i, label in part.items():
                predicted[i] = label
        return classification_metrics(predicted, gold, len(self.config.labels))

    def _record(self, row: dict, result: FinetuneResult) -> None:
        result.history.append(row)
        improved = not result.best_metrics or row["accuracy"] > result.best_metrics["accuracy"]
        log(f"epoch {row['epoch']} step {row['step']}: dev accuracy {row['accuracy']:.4f}, "
            f"macro-F1 {row['macro_f1']:.4f}" + (" (best so far, saved)" if improved else ""))
        if improved:
            result.best_metrics = row
        if self.dist.is_main:  # only rank 0 writes
            self.metrics.append(row)
            if improved:
                self.save(result.best, row)
            for callback in self.callbacks:
                callback(self.metrics.path)
        self.dist.barrier()

    def save(self, folder: Path, metrics: dict) -> None:
        """Write model, tokenizer, recipe and metrics to ``folder`` atomically (a crash leaves the old one).

        With ``lora``, only the trained parameters are written (adapters, head, pooler: ``lora.json`` and
        ``lora.safetensors``), to be merged onto the base checkpoint at load time.
        """
        stage = staging_dir(folder)
        try:
            if self.config.lora:
                save_lora_classifier(self.model, stage, base=self.base, lora=self.config.lora_config(),
                                     dtype=torch.float32)
            else:
                self.model.save_pretrained(stage)
            self.tokenizer.save_pretrained(stage)
            self.config.to_json(stage / RECIPE)
            write_json_atomic(stage / RESULTS, {**metrics, "dev": self.dev_data.source})
            commit_folder(stage, folder)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def finetune(
    config: FinetuneConfig,
    progress: bool = True,
    overwrite: bool = False,
    callbacks: Sequence[MetricsCallback] = (),
) -> FinetuneResult:
    """Fine-tune as ``config`` says; returns where the best checkpoint is and its metrics."""
    return Finetuner(config, progress=progress, overwrite=overwrite, callbacks=callbacks).train()
