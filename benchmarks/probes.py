"""Small measurements behind the claims in docs/benchmarks.md, each one command (not part of `make bench`).

    python -m benchmarks.probes forms            # product forms of tformer.nn.linear, per shape and row count
    python -m benchmarks.probes openmp           # a PyTorch LayerNorm before and after CTranslate2 runs in-process
    python -m benchmarks.probes decode           # seconds for Translator.search, greedy/beam 4 at batch 1 and 32
    python -m benchmarks.probes profile --beam 4 --batch-size 1   # operator times of that search (torch.profiler)
    python -m benchmarks.probes train-step       # seconds per training step of the bundled model (tformer side)
    python -m benchmarks.probes attention-dtype  # fused attention forward + backward, bfloat16 vs float32, per shape
    python -m benchmarks.probes lm-step --recipe recipes/shakespeare_char_60_wd.toml   # seconds per train-lm update
                                                 # (the trainer's own), small heads in float32 vs bfloat16

Compare code versions by running the same probe at two commits (``decode`` and ``train-step`` also run on
versions before the probes existed: copy this file into a worktree of the old commit); the machine is shared, so
repeat, alternate the versions and compare medians rather than single numbers.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# (in, out) of the translation models' layers: the 256-wide Multi30k model, the 384-wide everyday model
SHAPES = ((256, 8000), (256, 1024), (256, 768), (1024, 256), (256, 256),
          (384, 10000), (384, 1536), (384, 1152), (1536, 384), (384, 384))
ROWS = (1, 4, 8, 32, 128)


def median_us(run: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` calls, in microseconds, after a warm-up."""
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def forms() -> None:
    """Each product form on several copies of a weight used in turn, so that none stays in cache: F.linear, the
    form fast_linear picks without the row kernel, and with it (the native extension loaded)."""
    from tformer.nn import linear  # here: the other probes also run on older versions
    from tformer.nn.linear import PackedWeight, fast_linear

    row_kernel = hasattr(linear, "row_layout")
    if row_kernel:
        from tformer.nn.native import native_ops

        row_kernel = native_ops() is not None
    print("(in -> out)  rows: F.linear µs / fast_linear µs without the row kernel"
          + (" / with it (where it applies)" if row_kernel else ""))
    for in_features, out_features in SHAPES:
        copies = max(1, 8_000_000 // (in_features * out_features * 4) * 3)  # ~24 MB of weights in all
        weights = [torch.randn(out_features, in_features) for _ in range(copies)]  # made outside inference_mode
        caches = [PackedWeight() for _ in weights]
        row_caches = [PackedWeight(linear.row_layout) for _ in weights] if row_kernel else None
        bias = torch.randn(out_features)
        cells = []
        with torch.inference_mode():
            for rows in ROWS:
                x = torch.randn(rows, in_features)
                plain = median_us(functools.partial(_each, F.linear, x, weights, bias), 10) / copies
                ours = median_us(functools.partial(_each, fast_linear, x, weights, bias, caches), 10) / copies
                cell = f"{rows}: {plain:.0f} / {ours:.0f}"
                if row_kernel and linear.product_form(x, in_features, out_features) == "rows":
                    rows_us = median_us(functools.partial(_each, fast_linear, x, weights, bias, caches, row_caches),
                                        10) / copies
                    cell += f" / {rows_us:.0f}"
                cells.append(cell)
        print(f"{in_features} -> {out_features}  " + "  ".join(cells), flush=True)


def _each(product: Callable, x: torch.Tensor, weights: list, bias: torch.Tensor, caches: list | None = None,
          row_caches: list | None = None) -> None:
    for i, weight in enumerate(weights):
        if caches is None:
            product(x, weight, bias)
        elif row_caches is None:
            product(x, weight, bias, caches[i])
        else:
            product(x, weight, bias, caches[i], row_packed=row_caches[i])


def openmp() -> None:
    """How a CTranslate2 run in the same process changes the cost of a small PyTorch operation."""
    import tempfile
    from pathlib import Path

    from tformer import Translator
    from tformer.data.corpus import multi30k
    from tformer.interop.ctranslate2 import CTranslate2Translator, export_ctranslate2

    x, big = torch.randn(4, 256), torch.randn(512, 512)

    def layer_norm_us() -> float:
        with torch.inference_mode():
            big @ big  # a product large enough to run on every thread: PyTorch's OpenMP workers exist from here on
            return median_us(lambda: F.layer_norm(x, (256,)), 2000)

    translator = Translator.from_pretrained()
    folder = export_ctranslate2(translator, Path(tempfile.mkdtemp()) / "ct2")
    print(f"LayerNorm (4, 256) before CTranslate2 runs: {layer_norm_us():.1f} us", flush=True)
    ct2 = CTranslate2Translator(folder, threads=torch.get_num_threads())
    ct2.search(multi30k("test_2016_flickr").src[:48], batch_size=1)
    print(f"LayerNorm (4, 256) after CTranslate2 ran:   {layer_norm_us():.1f} us")


def decode(sentences: int) -> None:
    from tformer import Translator
    from tformer.data.corpus import multi30k

    translator = Translator.from_pretrained()
    texts = multi30k("test_2016_flickr").src
    for beam in (1, 4):
        for batch_size, count in ((1, min(sentences, 48)), (32, sentences)):
            chunk = texts[:count]
            search = functools.partial(translator.search, chunk, beam=beam, batch_size=batch_size)
            seconds = median_us(search, 1, 3) / 1e6
            print(f"beam {beam}, batch {batch_size}, {count} sentences: {seconds:.3f} s", flush=True)


def profile(sentences: int, beam: int, batch_size: int) -> None:
    """Where the time of one ``Translator.search`` goes, operator by operator (the C++ search loops call PyTorch's
    operators through its dispatcher, so they are counted too). The profiler adds a few microseconds per call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from tformer import Translator
    from tformer.data.corpus import multi30k

    translator = Translator.from_pretrained()
    texts = multi30k("test_2016_flickr").src[:sentences]
    translator.search(texts[:8], beam=beam, batch_size=batch_size)  # warm-up: builds, packs, caches
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        translator.search(texts, beam=beam, batch_size=batch_size)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def train_step() -> None:
    from tformer import Translator
    from tformer.models.seq2seq import Seq2SeqTransformer
    from tformer.training import losses

    from benchmarks.training_step import LABEL_SMOOTHING, real_batches

    translator = Translator.from_pretrained()
    cfg = translator.model.config
    batches = real_batches(translator, 4, 3000)
    model = Seq2SeqTransformer(cfg)
    model.load_state_dict(translator.model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))

    def loss_of(batch) -> torch.Tensor:
        if hasattr(losses, "batch_loss"):
            return losses.batch_loss(model, batch, LABEL_SMOOTHING, cfg.pad_id)[0]
        logits = model(batch.src, batch.tgt_in)  # versions before batch_loss: logits at every position
        return losses.label_smoothed_nll_loss(logits, batch.tgt_out, LABEL_SMOOTHING, cfg.pad_id)[0]

    def each_batch() -> None:  # the optimiser update of the benchmark's training case, once per batch
        model.train()
        for batch in batches:
            (loss_of(batch) / int(batch.tgt_out.ne(cfg.pad_id).sum())).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    seconds = median_us(each_batch, 1, 3) / 1e6 / len(batches)
    print(f"training step (4 Multi30k batches of 3000 tokens): {seconds:.3f} s per step")


# (batch, heads, len, head_dim): the Shakespeare models (context 256 and 512), short translation-like sequences, a
# head_dim of 64 at both lengths
ATTENTION_SHAPES = ((32, 8, 256, 32), (16, 8, 512, 32), (128, 8, 32, 32), (32, 4, 256, 64), (16, 9, 512, 64))


def attention_dtype() -> None:
    """What FLOAT32_HEAD_DIM in tformer.nn.attention rests on: PyTorch's fused kernel, forward and backward with a
    causal boolean mask, on bfloat16 and on float32 inputs, side by side for each shape."""
    print("(batch, heads, len, head_dim): bfloat16 ms / float32 ms (forward + backward, median of 5)")
    for batch, heads, length, head_dim in ATTENTION_SHAPES:
        mask = torch.ones(length, length, dtype=torch.bool).tril()[None, None]  # (1, 1, len, len)
        times = []
        for dtype in (torch.bfloat16, torch.float32):
            q, k, v = (torch.randn(batch, heads, length, head_dim, dtype=dtype, requires_grad=True) for _ in range(3))

            def step(q=q, k=k, v=v, mask=mask) -> None:
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()

            times.append(median_us(step, calls=3) / 1000)
        print(f"{(batch, heads, length, head_dim)}: {times[0]:.1f} / {times[1]:.1f}")


def lm_step(recipe: str, rounds: int = 2, updates: int = 12) -> None:
    """Seconds per update of ``tformer train-lm`` on ``recipe`` (the trainer's own update: its batches of the
    recipe's text, optimiser, clipping and weight average), with heads of at most 32 features attended in float32
    (tformer's choice) and with every head left to autocast's bfloat16, alternated ``rounds`` times."""
    import itertools
    import tempfile

    from tformer.nn import attention
    from tformer.training.lm import LMRecipe, LMTrainer

    with tempfile.TemporaryDirectory() as out:
        trainer = LMTrainer(LMRecipe.from_file(recipe), out, progress=False)
        trainer.model.train()
        steps = itertools.count()

        def update() -> None:
            trainer._update(*trainer.batch(next(steps)))  # what LMTrainer.train does once per update

        chosen = attention.FLOAT32_HEAD_DIM
        try:
            for _ in range(rounds):
                for limit, name in ((chosen, "float32 small heads"), (0, "all bfloat16")):
                    attention.FLOAT32_HEAD_DIM = limit
                    print(f"{name}: {median_us(update, calls=updates // 3, repeats=3) / 1e6:.3f} s per update")
        finally:
            attention.FLOAT32_HEAD_DIM = chosen
            trainer.lock.release()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probes", description=__doc__.split("\n\n")[0])
    p.add_argument("probe", choices=("forms", "openmp", "decode", "profile", "train-step",
                                          "attention-dtype", "lm-step"))
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=128,
                   help="test sentences for `decode` and `profile` (default: %(default)s)")
    p.add_argument("--beam", type=int, default=4, help="beam size for `profile` (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="batch size for `profile` (default: %(default)s)")
    p.add_argument("--recipe", default="recipes/shakespeare_char_60_wd.toml",
                   help="train-lm recipe for `lm-step` (default: %(default)s)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.probe == "forms":
        forms()
    elif args.probe == "openmp":
        openmp()
    elif args.probe == "decode":
        decode(args.sentences)
    elif args.probe == "profile":
        profile(args.sentences, args.beam, args.batch_size)
    elif args.probe == "attention-dtype":
        attention_dtype()
    elif args.probe == "lm-step":
        lm_step(args.recipe)
    else:
        train_step()


if __name__ == "__main__":
    main()
