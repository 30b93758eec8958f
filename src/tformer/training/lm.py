"""Training a decoder-only language model on one text file, next-token prediction (``tformer train-lm``).

The translation trainer's habits: a progress bar whose ETA honours the time limit, validation loss in
``metrics.jsonl`` (callbacks draw the curve), atomic checkpoints with exact resume, bf16 autocast where the CPU has
bfloat16 instructions, weight decay on matrices only, warm-up then a cosine decay, ``init_from``. The text is cut
once: the first ``1 - validation_fraction`` for training (random windows), the rest for validation (consecutive
windows, every character scored once).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from tformer.devices import cpu_has_bf16
from tformer.errors import ConfigError, DataError
from tformer.evaluation.language_model import windowed_loss
from tformer.files import write_text_atomic
from tformer.models.causal_lm import CausalLM, CausalLMConfig
from tformer.models.config import JsonConfig, require_positive, require_probability
from tformer.text.chars import CharTokenizer
from tformer.training import checkpoint as ckpt
from tformer.training.lock import OutputLock
from tformer.training.metrics import METRICS, MetricsCallback, MetricsLog, log
from tformer.training.muon import Muon, muon_param_groups
from tformer.training.optim import param_groups
from tformer.training.recipe import recipe_from_file
from tformer.training.trainer import TrainingError


@dataclass
class LMDataConfig(JsonConfig):
    root: str = ""  # corpora folder; empty = $TFORMER_DATA or ../shared/data
    corpus: str = "tinyshakespeare/input.txt"  # the text file, under root
    validation_fraction: float = 0.1  # the last part of the text, held out

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")

    def path(self) -> Path:
        root = self.root or os.environ.get("TFORMER_DATA") or "../shared/data"
        return Path(root) / self.corpus

    def cut(self, text: str) -> int:
        """Where validation starts: the first ``1 - validation_fraction`` of ``text`` trains."""
        return int(len(text) * (1 - self.validation_fraction))


OPTIMIZERS = ("adamw", "muon")


@dataclass
class LMTrainConfig(JsonConfig):
    seed: int = 1
    batch_size: int = 32  # windows of max_len characters per update
    peak_lr: float = 2e-3
    min_lr_ratio: float = 0.1  # the cosine ends at peak_lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1  # matrices only (tformer.training.optim)
    # "adamw", or "muon": Muon on the hidden matrices, AdamW on embeddings and vectors (tformer.training.muon)
    optimizer: str = "adamw"
    muon_momentum: float = 0.95
    muon_rms: float = 0.2  # Muon's update RMS per unit of learning rate (0.2 matches AdamW's typical update)
    betas: tuple[float, float] = (0.9, 0.99)
    clip_norm: float = 1.0
    max_steps: int = 0  # the cosine spans max_steps, or max_minutes, whichever ends first; at least one is set
    max_minutes: float = 0.0
    eval_every: int = 200  # updates between validation (and checkpoints)
    eval_windows: int = 0  # validation windows scored (0 = the whole validation text)
    keep_last: int = 3
    # exponential moving average of the weights (0 = off): evaluation, best/ and final/ use the average, updated
    # after every update as avg += (1 - d) (w - avg) with d = min(ema_decay, (1 + step) / (10 + step))
    ema_decay: float = 0.0
    # "late dropout": the residual and embedding dropout moves linearly from the model's dropout at the start to
    # final_dropout at the end of the schedule (None = fixed), so the model learns fast early and memorises less late
    final_dropout: float | None = None
    bf16: bool = True  # bf16 autocast where the CPU has bfloat16 instructions (else float32, said in the log)
    threads: int = 0  # torch threads; 0 = torch's default
    init_from: str = ""  # a model folder (config, weights, tokenizer) to continue from

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        require_positive(self, "batch_size", "warmup_steps", "eval_every", "keep_last")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.muon_momentum < 1 or not self.muon_rms > 0:
            raise ConfigError(f"need muon_momentum in [0, 1) and muon_rms > 0, got {self.muon_momentum!r}, "
                              f"{self.muon_rms!r}")
        if self.final_dropout is not None:
            require_probability(self, "final_dropout")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay!r}")
        if not self.peak_lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"need peak_lr > 0 and min_lr_ratio in [0, 1], got {self.peak_lr!r}, "
                              f"{self.min_lr_ratio!r}")
        if self.max_steps < 0 or self.max_minutes < 0 or not (self.max_steps or self.max_minutes):
            raise ConfigError("set train.max_steps or train.max_minutes (> 0): the cosine schedule needs an end")


@dataclass
class LMRecipe(JsonConfig):
    model: dict[str, Any] = field(default_factory=dict)  # CausalLMConfig fields (vocab and token ids come from data)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMRecipe:
        unknown = sorted(set(data) - {"model", "data", "train"})
        if unknown:
            raise ConfigError(f"recipe: unknown table(s) {', '.join(unknown)} (expected model, data, train)")
        return cls(model=dict(data.get("model", {})), data=LMDataConfig.from_dict(data.get("data", {})),
                   train=LMTrainConfig.from_dict(data.get("train", {})))

    @classmethod
    def from_file(cls, path: str | Path) -> LMRecipe:
        return recipe_from_file(cls, path)


def cosine_lr_factor(progress: float, step: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak rate: linear warm-up over ``warmup_steps``, then half a cosine from 1 down to
    ``min_ratio`` as ``progress`` (the share of the run done, 0..1) goes from 0 to 1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def scheduled_dropout(start: float, end: float | None, progress: float) -> float:
    """The dropout rate when ``progress`` (the share of the run done, 0..1) is done: ``start`` throughout when
    ``end`` is None, else the straight line from ``start`` to ``end``."""
    if end is None:
        return start
    return start + (end - start) * min(max(progress, 0.0), 1.0)


@dataclass
class LMTrainerState:
    step: int = 0
    seconds: float = 0.0
    tokens: int = 0
    best_loss: float = float("inf")
    checkpoints: list[str] = field(default_factory=list)


class LMTrainer:
    """Trains a ``CausalLM`` on ``recipe.data``'s text as ``recipe.train`` says, writing under ``out_dir``
    (checkpoints/, best/, final/, metrics.jsonl, tokenizer.json, recipe.json, samples.txt)."""

    def __init__(self, recipe: LMRecipe, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 callbacks: Sequence[MetricsCallback] = ()) -> None:
        self.recipe, self.cfg, self.out = recipe, recipe.train, Path(out_dir)
        self.progress, self.callbacks = progress, list(callbacks)
        self.metrics = MetricsLog(self.out / METRICS)
        self.lock = OutputLock(self.out)
        self._check_output_dir(resume)
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        self.bf16 = self.cfg.bf16 and cpu_has_bf16()
        if self.cfg.bf16 and not self.bf16:
            log("this CPU has no bfloat16 instructions: training in float32")
        torch.manual_seed(self.cfg.seed)
        text = self._read_text()
        self.tokenizer = self._tokenizer(text)
        self.model = self._build_model()
        self.train_ids, self.val_ids = self._split(text)
        self.optimizer = self._optimizer()
        self.ema = WeightAverage(self.model, self.cfg.ema_decay) if self.cfg.ema_decay else None
        self.state = LMTrainerState()
        if resume:
            self._resume()

    # ----- set-up -------------------------------------------------------------------------------------------
    def _check_output_dir(self, resume: bool) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            if not resume and any((self.out / "checkpoints").glob("step-*")):
                raise TrainingError(f"{self.out} already holds checkpoints: pass --resume to continue, or another "
                                    "--out")
            for name in ckpt.remove_leftovers(self.out):
                log(f"removed {name}, left by a run that was stopped")
            if not resume:
                self.metrics.clear()
            write_text_atomic(self.out / "recipe.json", self.recipe.to_json() + "\n")
        except BaseException:
            self.lock.release()
            raise

    def _read_text(self) -> str:
        path = self.recipe.data.path()
        if not path.is_file():
            raise DataError(f"training text not found: {path} (set data.root, --data or $TFORMER_DATA)")
        text = path.read_text(encoding="utf-8")
        if len(text) < 1000:
            raise DataError(f"{path}: only {len(text)} characters; a language model needs more text")
        return text

    def _tokenizer(self, text: str) -> CharTokenizer:
        """The run's characters: from ``init_from``, from an earlier start of this run, or from the text."""
        for folder in (Path(self.cfg.init_from) if self.cfg.init_from else None, self.out):
            if folder is not None and (folder / "tokenizer.json").is_file():
                tokenizer = CharTokenizer.from_pretrained(folder)
                break
        else:
            tokenizer = CharTokenizer.from_text(text[: self.recipe.data.cut(text)])
        write_text_atomic(self.out / "tokenizer.json", tokenizer.tokenizer.to_str())
        return tokenizer

    def _split(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)  # one id per character
        cut = self.recipe.data.cut(text)
        train, val = ids[:cut], ids[cut:]
        if min(len(train), len(val)) <= self.model.config.max_len:
            raise DataError(f"the text is too short for windows of max_len={self.model.config.max_len} characters")
        log(f"data: {len(train):,} training and {len(val):,} validation characters, vocabulary "
            f"{self.tokenizer.vocab_size}")
        return train, val

    def _build_model(self) -> CausalLM:
        if self.cfg.init_from:
            model = CausalLM.from_pretrained(self.cfg.init_from).train()
            loaded = model.config.to_dict()
            differ = sorted(k for k, v in self.recipe.model.items() if loaded.get(k) != v)
            if differ:
                raise ConfigError(f"recipe [model] disagrees with {self.cfg.init_from}/config.json on: "
                                  f"{', '.join(differ)}")
        else:
            unk = self.tokenizer.unk_id
            fields = dict(vocab_size=self.tokenizer.vocab_size, pad_id=unk, bos_id=unk, eos_id=unk)
            model = CausalLM(CausalLMConfig(**{**self.recipe.model, **fields}))
        log(f"model: {model.num_parameters() / 1e6:.2f}M parameters, context {model.config.max_len}, "
            f"{'bf16 autocast' if self.bf16 else 'float32'}")
        return model

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.optimizer == "muon":
            return Muon(muon_param_groups(self.model, cfg.weight_decay), lr=cfg.peak_lr, momentum=cfg.muon_momentum,
                        rms=cfg.muon_rms, betas=cfg.betas, ns_dtype=torch.bfloat16 if self.bf16 else torch.float32)
        return torch.optim.AdamW(param_groups(self.model, cfg.weight_decay), lr=cfg.peak_lr, betas=cfg.betas)

    # ----- the loop -----------------------------------------------------------------------------------------
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows of update ``step``: a function of (seed, step) only, so a resumed run sees the same data.
        Returns inputs and next-character targets, both (batch, max_len)."""
        context = self.model.config.max_len
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        starts = torch.randint(len(self.train_ids) - context - 1, (self.cfg.batch_size,), generator=generator)
        index = starts[:, None] + torch.arange(context + 1)  # (batch, max_len + 1)
        window = self.train_ids[index]
        return window[:, :-1], window[:, 1:]

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per character (nats)."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(inputs)  # (batch, max_len, vocab)
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    def progress_done(self) -> float:
        """The share of the run done: of max_steps or of max_minutes, whichever is further along."""
        cfg, st = self.cfg, self.state
        shares = [st.step / cfg.max_steps if cfg.max_steps else 0.0,
                  st.seconds / (cfg.max_minutes * 60) if cfg.max_minutes else 0.0]
        return max(shares)

    def train(self) -> Path:
        cfg, st = self.cfg, self.state
        bar = tqdm(total=cfg.max_steps or None, initial=st.step, disable=not self.progress, unit="upd",
                   dynamic_ncols=True)
        started = time.time() - st.seconds
        while self.progress_done() < 1:
            self.model.train()
            progress = self.progress_done()
            factor = cosine_lr_factor(progress, st.step, cfg.warmup_steps, cfg.min_lr_ratio)
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.peak_lr * factor
            self.model.set_dropout(scheduled_dropout(self.model.config.dropout, cfg.final_dropout, progress))
            loss = self._update(*self.batch(st.step))
            st.step += 1
            st.tokens += self.cfg.batch_size * self.model.config.max_len
            st.seconds = time.time() - started
            self._log_train(loss, cfg.peak_lr * factor, bar)
            if st.step % cfg.eval_every == 0:
                self._evaluate_and_save()
        bar.close()
        if not st.checkpoints or st.checkpoints[-1] != f"step-{st.step:08d}":
            self._evaluate_and_save()
        return self._finish()

    def _update(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        loss = self.loss(inputs, targets)
        if not torch.isfinite(loss):
            last = self.state.checkpoints[-1] if self.state.checkpoints else "none yet"
            raise TrainingError(f"non-finite loss at update {self.state.step + 1}; last good checkpoint: {last}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.state.step)
        return float(loss.detach())

    def _log_train(self, loss: float, lr: float, bar: tqdm) -> None:
        st, cfg = self.state, self.cfg
        per_step = st.seconds / max(st.step, 1)
        if cfg.max_minutes:  # the ETA honours the time limit: the bar's end is the step the clock allows
            by_time = st.step + max(0.0, cfg.max_minutes * 60 - st.seconds) / per_step
            bar.total = int(min(by_time, cfg.max_steps) if cfg.max_steps else by_time)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{st.tokens / max(st.seconds, 1e-9):.0f}")
        if st.step % 25 == 0:
            self.metrics.append({"kind": "train", "step": st.step, "loss": loss, "lr": lr,
                                 "tokens_per_s": st.tokens / max(st.seconds, 1e-9), "seconds": st.seconds})

    # ----- evaluation and checkpoints -----------------------------------------------------------------------
    def validation_loss(self, windows: int | None = None, model: CausalLM | None = None, batch_size: int = 64) -> float:
        """Mean cross-entropy per character (nats) over consecutive validation windows: the first ``windows`` of
        them (None: the recipe's ``eval_windows``; 0: the whole validation text, every character once)."""
        windows = self.cfg.eval_windows if windows is None else windows
        return windowed_loss(model or self.model, self.val_ids, windows=windows, bf16=self.bf16, batch_size=batch_size)

    def _evaluate_and_save(self) -> None:
        st = self.state
        with self.evaluated_weights():  # one swap for scoring and, when better, keeping them as best/
            val_loss = self.validation_loss()
            improved = val_loss < st.best_loss
            if improved:
                self.save_model(self.out / "best")
        st.best_loss = min(st.best_loss, val_loss)
        self.metrics.append({"kind": "eval", "step": st.step, "val_loss": val_loss, "seconds": st.seconds})
        log(f"eval @ update {st.step} ({st.seconds / 60:.1f} min): val loss {val_loss:.4f} nats/char"
            + (" (best)" if improved else ""))
        name = f"step-{st.step:08d}"
        st.checkpoints = ([c for c in st.checkpoints if c != name] + [name])[-self.cfg.keep_last :]
        final = self.out / "checkpoints" / name
        with ckpt.staged_folder(final) as build:
            self.model.save_pretrained(build)  # the trained weights themselves: resuming continues from them
            self.tokenizer.save_pretrained(build)
            if self.ema is not None:
                save_file(self.ema.state_dict(), str(build / EMA_FILE))
            ckpt.save_training_state(build, st.__dict__, self.optimizer.state_dict(), {}, [torch.get_rng_state()])
        for old in final.parent.glob("step-*"):
            if old.name not in st.checkpoints:
                shutil.rmtree(old, ignore_errors=True)
        for callback in self.callbacks:
            callback(self.metrics.path)

    def evaluated_weights(self) -> contextlib.AbstractContextManager[None]:
        """Within the block the model holds the weights that are evaluated and kept: the moving average when
        ``ema_decay`` is set (the trained weights come back afterwards), else the trained weights."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def save_model(self, folder: Path) -> None:
        with ckpt.staged_folder(folder) as build:
            self.model.save_pretrained(build)
            self.tokenizer.save_pretrained(build)

    def _resume(self) -> None:
        folder = self.out / "checkpoints"
        for path in sorted(folder.glob("step-*"), reverse=True) if folder.is_dir() else []:
            try:
                ckpt.verify_folder(path)
                state = ckpt.load_training_state(path)
                weights = load_file(str(path / ckpt.WEIGHTS))
            except Exception as err:  # whatever is damaged in it: fall back to the previous one
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                log(f"skipping checkpoint {path.name}: {reason}; falling back to the previous one")
                continue
            self.model.load_weights(weights, str(path))
            if self.ema is not None:
                if not (path / EMA_FILE).is_file():
                    raise TrainingError(f"{path} has no {EMA_FILE}: it was written without train.ema_decay")
                self.ema.load_state_dict(load_file(str(path / EMA_FILE)))
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except ValueError as err:  # torch's message: group counts or sizes differ
                raise TrainingError(f"{path}: its optimizer state does not fit train.optimizer = "
                                    f"{self.cfg.optimizer!r} (was the recipe's optimizer changed?): {err}") from err
            torch.set_rng_state(state["rng"]["torch_cpu_rank0"])
            self.state = LMTrainerState(**state["trainer"])
            self.state.checkpoints = [c for c in self.state.checkpoints if (folder / c).is_dir()]
            self.metrics.drop_after(self.state.step)
            log(f"resumed from {path.name} (update {self.state.step}, {self.state.seconds / 60:.1f} min)")
            return
        log("no checkpoint to resume from: starting fresh")

    def _finish(self) -> Path:
        """OUT/final is the best checkpoint's model; OUT/samples.txt a few continuations from it."""
        final = self.out / "final"
        with ckpt.staged_folder(final) as build:
            for path in (self.out / "best").iterdir():
                if path.is_file() and path.name != ckpt.MANIFEST:
                    shutil.copyfile(path, build / path.name)
        model = CausalLM.from_pretrained(final)
        full = self.validation_loss(windows=0, model=model)  # the whole validation text, whatever eval_windows is
        self.metrics.append({"kind": "final", "step": self.state.step, "val_loss": full, "seconds": self.state.seconds})
        for callback in self.callbacks:
            callback(self.metrics.path)
        write_text_atomic(self.out / "samples.txt", samples(model, self.tokenizer))
        log(f"final model: {final} (val loss {full:.4f} nats/char on the whole validation text, {self.state.step} "
            f"updates, {self.state.seconds / 60:.1f} min)")
        self.lock.release()
        return final


EMA_FILE = "ema.safetensors"


class WeightAverage:
    """An exponential moving average of a model's floating-point parameters (float32 copies)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.is_floating_point()]
        self.params = [p for n, p in model.named_parameters() if p.is_floating_point()]
        self.average = [p.detach().float().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the current weights after update ``step`` (0-based): a shorter memory at
        first, so the random initial weights fade out quickly."""
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.average, [p.detach().float() for p in self.params], 1 - decay)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        trained = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, t in zip(self.params, trained):
                    p.copy_(t)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: a.contiguous() for n, a in zip(self.names, self.average)}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.names) - set(tensors))
        if missing:
            raise TrainingError(f"the weight average lacks {', '.join(missing[:3])}")
        self.average = [tensors[n].float().clone() for n in self.names]


SAMPLE_PROMPTS = ("ROMEO:", "JULIET:\nO ", "First Citizen:\n")


def samples(model: CausalLM, tokenizer: CharTokenizer, length: int = 300) -> str:
    """Continuations of ``SAMPLE_PROMPTS`` (temperature 0.8, top-k 40, seed 1), for a look at what was learned."""
    from tformer.decoding.generate import GenerationConfig, generate

    config = GenerationConfig(max_new_tokens=length, temperature=0.8, top_k=40, seed=1)
    texts = generate(model, tokenizer, list(SAMPLE_PROMPTS), config)
    return "".join(f"--- {p!r} (temperature 0.8, top-k 40, seed 1)\n{p}{t}\n\n" for p, t in zip(SAMPLE_PROMPTS, texts))


