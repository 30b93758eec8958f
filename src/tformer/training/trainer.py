"""The training loop for translation: token-budget batches, label smoothing, AdamW with warm-up,
periodic evaluation with sacreBLEU, atomic checkpoints and exact resume.

Plots are not drawn here: ``callbacks`` get the metrics file after each evaluation (the CLI passes one that draws
the training curves)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tformer.data.batching import token_budget_batches
from tformer.data.corpus import ParallelCorpus, multi30k
from tformer.decoding.batching import search_sources
from tformer.errors import ConfigError, ModelFolderError, TformerError
from tformer.evaluation.bleu import corpus_bleu
from tformer.files import write_bytes_atomic, write_text_atomic
from tformer.models import Seq2SeqTransformer, TransformerConfig
from tformer.text.bpe import BPETokenizer
from tformer.training import checkpoint as ckpt
from tformer.training import distributed
from tformer.training.data import collate, encode_pairs, training_corpus
from tformer.training.lock import OutputLock
from tformer.training.losses import batch_loss
from tformer.training.metrics import METRICS, MetricsCallback, MetricsLog, log
from tformer.training.optim import param_groups
from tformer.training.recipe import Recipe
from tformer.training.schedule import inverse_sqrt_schedule


class TrainingError(TformerError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


@dataclass
class TrainerState:
    epoch: int = 0
    batch_in_epoch: int = 0  # next batch to run in this epoch
    step: int = 0  # optimizer updates done
    best_bleu: float = -1.0
    evals_since_best: int = 0
    seconds: float = 0.0
    tokens: int = 0
    checkpoints: list[str] = field(default_factory=list)
    evaluated_step: int = -1  # the update of the last evaluation (checkpoints on time have no scores)


class Trainer:
    """Trains a ``Seq2SeqTransformer`` as ``recipe`` says, writing checkpoints and metrics under ``out_dir``.

    ``callbacks`` are called on rank 0 with the path of ``metrics.jsonl`` after each evaluation and at the end.
    """

    def __init__(
        self,
        recipe: Recipe,
        out_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        callbacks: Sequence[MetricsCallback] = (),
    ) -> None:
        self.recipe, self.out = recipe, Path(out_dir)
        self.cfg = recipe.train
        self.callbacks = list(callbacks)
        self.dist = distributed.setup(self.cfg.device, self.cfg.ddp_timeout_s)
        self.progress = progress and self.dist.is_main
        self.metrics = MetricsLog(self.out / METRICS, enabled=self.dist.is_main)
        self.lock = OutputLock(self.out)  # held by rank 0 from here to the end of train()
        if self.dist.is_main:
            self._check_output_dir(resume)
        self.dist.barrier()
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        torch.manual_seed(self.cfg.seed)  # identical initial weights on every rank
        self.tokenizer = self._tokenizer(resume)
        self.model = self._build_model().to(self.dist.device)
        torch.manual_seed(self.cfg.seed + self.dist.rank)  # different dropout masks per rank
        self.ddp_model = DistributedDataParallel(self.model) if self.dist.enabled else self.model
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, self.cfg.weight_decay), lr=self.cfg.peak_lr, betas=self.cfg.betas, eps=1e-9
        )
        self.scheduler = inverse_sqrt_schedule(self.optimizer, self.cfg.warmup_steps)
        self.state = TrainerState()
        self._load_data()
        if resume:
            self._resume()

    # ----- set-up -------------------------------------------------------------------------------------------
    def _check_output_dir(self, resume: bool) -> None:
        """Take the folder's lock (a second run on it fails at once), check it, and clear what a killed run left."""
        probe = self.out / ".write-test"
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
            probe.write_bytes(b"x" * 1024)
            probe.unlink()
        except OSError as err:
            self.lock.release()
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)  # a full disk must not leave the probe behind
            raise TrainingError(f"output folder {self.out} is not writable: {err.strerror}") from None
        try:
            free = shutil.disk_usage(self.out).free
            if free < 200 * 2**20:
                raise TrainingError(f"only {free / 2**20:.0f} MiB free in {self.out}; need at least 200 MiB")
            checkpoints = self.out / "checkpoints"
            if not resume and checkpoints.is_dir() and any(checkpoints.glob("step-*")):
                raise TrainingError(f"{self.out} already holds checkpoints: pass --resume to continue, or another "
                                    "--out")
            for name in ckpt.remove_leftovers(self.out):
                log(f"removed {name}, left by a run that was stopped")
            if not resume:
                self.metrics.clear()  # rows of an earlier run that stopped before its first checkpoint
            write_text_atomic(self.out / "recipe.json", self.recipe.to_json() + "\n")
        except BaseException:
            self.lock.release()
            raise

    def _tokenizer(self, resume: bool) -> BPETokenizer:
        """The run's BPE: trained by rank 0 on the training corpus, then read by every rank."""
        if self.dist.is_main and resume:
            self._repair_tokenizer()
        if self.dist.is_main and not (self.out / "tokenizer.json").is_file():
            spec = self.recipe.tokenizer
            if self.cfg.init_from:  # continue with the BPE of the model we start from
                tok = BPETokenizer.from_pretrained(self.cfg.init_from)
                if spec.split_digits and not tok.splits_digits:
                    try:
                        tok = tok.with_split_digits()
                    except ValueError as err:
                        raise ConfigError(f"tokenizer.split_digits with {self.cfg.init_from}: {err}") from None
                    log(f"digits split into single tokens from now on (the BPE of {self.cfg.init_from} merged them)")
            else:
                corpus = self.corpus
                log(f"training BPE (vocab {spec.vocab_size}) on {len(corpus)} pairs")
                tok = BPETokenizer.train(corpus.src + corpus.tgt, spec.vocab_size, spec.min_frequency,
                                         spec.split_digits)
            build = ckpt.staging_dir(self.out / "tokenizer")
            try:
                tok.save_pretrained(build)  # then one rename puts the whole file in place
                os.replace(build / "tokenizer.json", self.out / "tokenizer.json")
            except Exception as err:  # tokenizers reports a full disk as a bare Exception
                raise TrainingError(f"cannot write {self.out / 'tokenizer.json'}: {err}") from None
            finally:
                shutil.rmtree(build, ignore_errors=True)
        self.dist.barrier()
        return BPETokenizer.from_pretrained(self.out)

    def _repair_tokenizer(self) -> None:
        """A damaged OUT/tokenizer.json is replaced by the copy in the newest valid checkpoint (or made again)."""
        path = self.out / "tokenizer.json"
        if not path.is_file():
            return
        try:
            BPETokenizer.from_pretrained(self.out)
            return
        except ModelFolderError as err:
            problem = err
        for checkpoint in sorted((self.out / "checkpoints").glob("step-*"), reverse=True):
            try:
                ckpt.verify_folder(checkpoint)
            except ModelFolderError:
                continue
            write_bytes_atomic(path, (checkpoint / "tokenizer.json").read_bytes())
            log(f"{problem}; restored it from {checkpoint.name}")
            return
        path.unlink()
        log(f"{problem}; no checkpoint holds a copy, so it is made again")

    def _build_model(self) -> Seq2SeqTransformer:
        if self.cfg.init_from:
            return self._initial_model(Path(self.cfg.init_from))
        v = self.tokenizer.vocab_size
        fields = dict(src_vocab_size=v, tgt_vocab_size=v, pad_id=self.tokenizer.pad_id, bos_id=self.tokenizer.bos_id,
                      eos_id=self.tokenizer.eos_id, unk_id=self.tokenizer.unk_id)
        config = TransformerConfig(**{**self.recipe.model, **fields})
        model = Seq2SeqTransformer(config)
        log(f"model: {model.num_parameters() / 1e6:.2f}M parameters")
        return model

    def _initial_model(self, folder: Path) -> Seq2SeqTransformer:
        """The model of ``init_from`` (a folder written by ``save_pretrained``), ready to train further."""
        model = Seq2SeqTransformer.from_pretrained(folder).train()
        loaded = model.config.to_dict()
        differ = sorted(k for k, v in self.recipe.model.items() if loaded.get(k) != v)
        if differ:
            raise ConfigError(f"recipe [model] disagrees with {folder}/config.json on: {', '.join(differ)}")
        log(f"model: {model.num_parameters() / 1e6:.2f}M parameters, initialised from {folder}")
        return model

    @functools.cached_property
    def corpus(self) -> ParallelCorpus:
        """The recipe's training pairs, read once (the BPE and the training examples both need them)."""
        return training_corpus(self.recipe.data, self.cfg.seed)

    def _load_data(self) -> None:
        corpus = self.corpus
        limit = self.recipe.data.max_tokens_per_sentence
        src_ids = self.tokenizer.encode_batch(corpus.src)
        tgt_ids = self.tokenizer.encode_batch(corpus.tgt)
        self.train_pairs = encode_pairs(src_ids, tgt_ids, limit)
        self.lengths = [max(len(s), len(t)) + 1 for s, t in self.train_pairs]
        val = multi30k("val", self.recipe.data.root or None)
        n = self.cfg.eval_sentences or len(val)
        self.val_src, self.val_ref = val.src[:n], val.tgt[:n]
        self.val_pairs = encode_pairs(self.tokenizer.encode_batch(val.src), self.tokenizer.encode_batch(val.tgt), 10**9)
        log(f"data: {len(self.train_pairs)} training pairs, {len(self.val_src)} validation sentences for BLEU")

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of an epoch (all of them in a single process)."""
        batches = token_budget_batches(self.lengths, self.cfg.max_tokens, self.cfg.seed, epoch)
        return distributed.shard(batches, self.dist.rank, self.dist.world_size, self.cfg.accumulate)

    # ----- the loop -----------------------------------------------------------------------------------------
    def train(self) -> Path:
        cfg, st = self.cfg, self.state
        per_epoch = math.ceil(len(self.epoch_batches(0)) / cfg.accumulate)
        total = per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, per_epoch * cfg.epochs)
        bar = tqdm(total=total, initial=st.step, disable=not self.progress, unit="upd", dynamic_ncols=True)
        started = time.time() - st.seconds
        self._bar_steps, self._bar_from = total, (st.step, st.seconds)  # for a time-limited bar's total
        self._last_save = st.seconds
        stop = self._limits_reached()  # a resumed run that had already finished trains no further
        while st.epoch < cfg.epochs and not stop:
            batches = self.epoch_batches(st.epoch)
            while st.batch_in_epoch < len(batches) and not stop:
                group = batches[st.batch_in_epoch : st.batch_in_epoch + cfg.accumulate]
                loss, tokens = self._update(group)
                st.batch_in_epoch += len(group)
                st.step += 1
                st.tokens += tokens
                st.seconds = time.time() - started
                self._log_train(loss, bar)
                stop = self._limits_reached()
                if cfg.eval_every and st.step % cfg.eval_every == 0:
                    stop = self._evaluate_and_save() or stop
                elif self._save_due():
                    self._save_on_time()
            if st.batch_in_epoch >= len(batches):
                st.epoch, st.batch_in_epoch = st.epoch + 1, 0
                if not cfg.eval_every:
                    stop = self._evaluate_and_save() or stop
        bar.close()
        if st.evaluated_step != st.step:  # stopped between evaluations, or before the first one (max_steps inside
            self._evaluate_and_save()  # the first epoch, eval_every 0), or right after a checkpoint on time
        final = self._finish()
        self.lock.release()
        return final

    def _update(self, group: list[list[int]]) -> tuple[float, int]:
        """One optimizer update over a group of micro-batches (this rank's share under DDP).

        The loss is normalised by the target tokens of the whole update across all ranks (times the world size,
        since DDP averages gradients), so W ranks equal one process that accumulates their batches.
        """
        self.ddp_model.train()
        c = self.model.config
        local_tokens = sum(sum(len(self.train_pairs[i][1]) + 1 for i in b) for b in group)
        n_tokens = int(self.dist.all_reduce_sum([float(local_tokens)])[0])
        scale = self.dist.world_size / n_tokens
        total_loss = 0.0
        for k, indices in enumerate(group):
            batch = collate([self.train_pairs[i] for i in indices], c.pad_id, c.bos_id, c.eos_id)
            sync = k == len(group) - 1 or not self.dist.enabled  # DDP all-reduces on the last micro-batch only
            with contextlib.nullcontext() if sync else self.ddp_model.no_sync():
                loss, _ = batch_loss(self.ddp_model, batch, self.cfg.label_smoothing, c.pad_id, self.dist.device,
                                     self.cfg.bf16)
                (loss * scale).backward()
            total_loss += loss.item()
        total_loss = self.dist.all_reduce_sum([total_loss])[0]
        if not math.isfinite(total_loss):
            self.optimizer.zero_grad(set_to_none=True)
            if self.cfg.skip_nonfinite:
                log(f"step {self.state.step + 1}: non-finite loss, update skipped")
                return float("nan"), n_tokens
            last = self.state.checkpoints[-1] if self.state.checkpoints else "none yet"
            raise TrainingError(f"non-finite loss at update {self.state.step + 1}; last good checkpoint: {last}")
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss / n_tokens, n_tokens

    def _limits_reached(self) -> bool:
        cfg, st = self.cfg, self.state
        out_of_steps = cfg.max_steps and st.step >= cfg.max_steps
        out_of_time = cfg.max_minutes and st.seconds >= cfg.max_minutes * 60
        return bool(self.dist.broadcast_object(bool(out_of_steps or out_of_time)))  # ranks stop together

    def _log_train(self, loss: float, bar: tqdm) -> None:
        st = self.state
        lr = self.scheduler.get_last_lr()[0]
        tok_s = st.tokens / max(st.seconds, 1e-9)
        bar.update(1)
        if self.cfg.max_minutes:  # the bar ends where the time limit will stop the run, so its ETA is honest
            bar.total = self._expected_steps()
            bar.refresh()
        bar.set_postfix(epoch=st.epoch + 1, loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:.0f}")
        if st.step % 50 == 0:
            self.metrics.append({"kind": "train", "step": st.step, "epoch": st.epoch, "loss": loss, "lr": lr,
                                 "tokens_per_s": tok_s, "seconds": st.seconds})

    def _expected_steps(self) -> int:
        """Updates the run will have made when it stops: the step limit, or sooner the time limit at this run's
        pace so far."""
        st, (first_step, first_seconds) = self.state, self._bar_from
        pace = (st.step - first_step) / max(st.seconds - first_seconds, 1e-9)  # updates per second
        by_time = st.step + pace * max(self.cfg.max_minutes * 60 - st.seconds, 0.0)
        return max(st.step, min(self._bar_steps, math.ceil(by_time)))

    def _save_due(self) -> bool:
        """Whether ``save_every_minutes`` of training passed since the last checkpoint (ranks decide together)."""
        every = self.cfg.save_every_minutes
        due = bool(every) and self.state.seconds - self._last_save >= every * 60
        return bool(self.dist.broadcast_object(due))

    def _save_on_time(self) -> None:
        """A checkpoint between evaluations (no scores), so a run stopped before its first evaluation resumes."""
        st = self.state
        rng = self.dist.all_gather_objects(torch.get_rng_state())
        name = f"step-{st.step:08d}"
        st.checkpoints = ([c for c in st.checkpoints if c != name] + [name])[-self.cfg.keep_last :]
        if self.dist.is_main:
            self._save_checkpoint(name, rng)
        self.dist.barrier()
        self._last_save = st.seconds
        log(f"checkpoint {name} ({self.cfg.save_every_minutes:g} minutes since the last one)")

    def _run_callbacks(self) -> None:
        if self.dist.is_main:
            for callback in self.callbacks:
                callback(self.metrics.path)

    # ----- evaluation and checkpoints -----------------------------------------------------------------------
    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean NLL per target token on the validation set; each rank scores a share, the sums are reduced."""
        self.model.eval()
        total, tokens = 0.0, 0
        batches = token_budget_batches([max(len(s), len(t)) + 1 for s, t in self.val_pairs], 4000, 0, 0)
        c = self.model.config
        for indices in batches[self.dist.rank :: self.dist.world_size]:
            batch = collate([self.val_pairs[i] for i in indices], c.pad_id, c.bos_id, c.eos_id)
            _, nll = batch_loss(self.model, batch, 0.0, c.pad_id, self.dist.device)
            total, tokens = total + float(nll), tokens + batch.num_target_tokens(c.pad_id)
        total, tokens = self.dist.all_reduce_sum([total, float(tokens)])
        return total / tokens

    def validation_bleu(self, model: Seq2SeqTransformer | None = None) -> float:
        """Greedy sacreBLEU on the validation sentences; each rank translates a share, rank 0's gather scores."""
        model = (model or self.model).eval()
        r, w = self.dist.rank, self.dist.world_size
        mine = translate_greedy(model, self.tokenizer, self.val_src[r::w])
        hyps: list[str] = [""] * len(self.val_src)
        for rank, part in enumerate(self.dist.all_gather_objects(mine)):
            hyps[rank::w] = part
        return corpus_bleu(hyps, self.val_ref)

    def _evaluate_and_save(self) -> bool:
        """Evaluate, checkpoint, track the best model. Returns True when early stopping says stop."""
        st, cfg = self.state, self.cfg
        val_loss, bleu = self.validation_loss(), self.validation_bleu()
        improved = bleu > st.best_bleu
        st.best_bleu, st.evals_since_best = (bleu, 0) if improved else (st.best_bleu, st.evals_since_best + 1)
        row = {"kind": "eval", "step": st.step, "epoch": st.epoch, "val_loss": val_loss, "val_bleu": bleu,
               "seconds": st.seconds}
        self.metrics.append(row)
        log(f"eval @ update {st.step} (epoch {st.epoch}): val loss {val_loss:.3f}, val BLEU {bleu:.2f}"
            + (" (best)" if improved else ""))
        rng = self.dist.all_gather_objects(torch.get_rng_state())  # every rank's dropout RNG, for exact resume
        self._last_save, st.evaluated_step = st.seconds, st.step
        name = f"step-{st.step:08d}"  # every rank keeps the same list: averaging at the end is collective
        st.checkpoints = ([c for c in st.checkpoints if c != name] + [name])[-cfg.keep_last :]
        if self.dist.is_main:
            if improved:
                self.save_model(self.out / "best")
            self._save_checkpoint(name, rng)
            self._run_callbacks()
        self.dist.barrier()
        return bool(cfg.patience and st.evals_since_best >= cfg.patience)

    def save_model(
        self, folder: Path, model: Seq2SeqTransformer | None = None, dtype: torch.dtype | None = None
    ) -> None:
        with ckpt.staged_folder(folder) as build:
            (model or self.model).save_pretrained(build, dtype=dtype)
            self.tokenizer.save_pretrained(build)

    def _save_checkpoint(self, name: str, rng: list[torch.Tensor]) -> None:
        """Write checkpoint ``name`` (already in ``state.checkpoints``), then delete those no longer listed."""
        st = self.state
        final = self.out / "checkpoints" / name
        with ckpt.staged_folder(final) as build:
            self.model.save_pretrained(build)
            self.tokenizer.save_pretrained(build)
            ckpt.save_training_state(build, st.__dict__, self.optimizer.state_dict(), self.scheduler.state_dict(),
                                     rng)
        for old in final.parent.glob("step-*"):
            if old.name not in st.checkpoints:
                shutil.rmtree(old, ignore_errors=True)

    def _resume(self) -> None:
        folder = self.out / "checkpoints"
        candidates = sorted(folder.glob("step-*"), reverse=True) if folder.is_dir() else []
        for path in candidates:
            try:
                ckpt.verify_folder(path)
                state = ckpt.upgrade_checkpoint(ckpt.load_training_state(path), self.model)
                weights = load_file(str(path / ckpt.WEIGHTS))
            except Exception as err:  # whatever is damaged (files, checksums.json, the state inside): skip it
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                log(f"skipping checkpoint {path.name}: {reason}; falling back to the previous one")
                continue
            self.model.load_state_dict_untied(weights, str(path))
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            rng = state["rng"]
            if f"torch_cpu_rank{self.dist.rank}" not in rng:
                raise TrainingError(f"{path} was written by a run with fewer ranks; resume with the same world size")
            torch.set_rng_state(rng[f"torch_cpu_rank{self.dist.rank}"])
            state["trainer"].setdefault("evaluated_step", state["trainer"]["step"])  # older runs saved on evaluations
            self.state = TrainerState(**state["trainer"])
            self.state.checkpoints = [c for c in self.state.checkpoints if (folder / c).is_dir()]
            self.metrics.drop_after(self.state.step, kinds=("average",))  # _finish makes the average again
            log(f"resumed from {path.name} (update {self.state.step}, epoch {self.state.epoch})")
            return
        log("no checkpoint to resume from: starting fresh")

    def _finish(self) -> Path:
        """Average the last checkpoints, keep whichever of it and the best checkpoint scores higher."""
        best_dir, final = self.out / "best", self.out / "final"
        chosen, bleu = best_dir, self.state.best_bleu
        k = self.cfg.average_last
        paths = [self.out / "checkpoints" / c for c in self.state.checkpoints[-k:]] if k else []
        if len(paths) > 1:
            averaged = Seq2SeqTransformer(self.model.config).to(self.dist.device)
            averaged.load_state_dict_untied(average_checkpoints(paths))
            avg_bleu = self.validation_bleu(averaged)
            log(f"average of the last {len(paths)} checkpoints: val BLEU {avg_bleu:.2f} (best single {bleu:.2f})")
            self.metrics.append({"kind": "average", "checkpoints": [p.name for p in paths], "val_bleu": avg_bleu})
            if self.dist.is_main:
                self.save_model(self.out / "averaged", averaged)
            if avg_bleu > bleu:
                chosen, bleu = self.out / "averaged", avg_bleu
        self._run_callbacks()
        if self.dist.is_main:
            with ckpt.staged_folder(final) as build:
                for path in chosen.iterdir():
                    if path.is_file() and path.name != ckpt.MANIFEST:
                        shutil.copyfile(path, build / path.name)
        self.dist.barrier()
        log(f"final model: {final} (from {chosen.name}, val BLEU {bleu:.2f})")
        return final


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the weights of several checkpoints of one model."""
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        for name, t in load_file(str(path / ckpt.WEIGHTS)).items():
            total[name] = total.get(name, 0) + t.double()
    return {name: (t / len(paths)).float() for name, t in total.items()}


def translate_greedy(
    model: Seq2SeqTransformer, tokenizer: BPETokenizer, texts: list[str], batch_size: int = 64
) -> list[str]:
    """Greedy translations in length-sorted batches, returned in input order (used for validation BLEU).

    Batched as ``Translator`` batches (``tformer.decoding.batching``): an empty input gives an empty output."""
    limit = model.config.max_len - 1
    sources = [ids[:limit] for ids in tokenizer.encode_batch(texts)]
    found = search_sources(model, sources, beam=1, batch_size=batch_size)
    return [tokenizer.decode(hyps[0].tokens) if hyps else "" for hyps in found]
