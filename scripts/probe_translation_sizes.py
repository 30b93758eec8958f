"""How long does one training update take for a few translation model sizes, on a recipe's real data?

    flock /tmp/tformer-heavy.lock python scripts/probe_translation_sizes.py recipes/everyday_stage1_scratch.toml \
        --updates 8 --sizes 256x4x3x1024,320x6x4x1280,384x4x3x1536

Builds the recipe's training corpus, counts its target tokens per epoch (with the bundled model's tokenizer as a
stand-in for the recipe's own BPE), then times ``--updates`` updates (forward, backward, AdamW) per size on real
token-budget batches (``train.max_tokens``, ``train.bf16``, ``train.threads``), after one warm-up update. Prints
milliseconds per update (wall and CPU time), target tokens per second, the float16 size and the minutes one epoch
would take: the numbers a recipe's size and ``max_minutes`` are chosen from. A size is ``d_model x encoder layers
x decoder layers x d_ff`` (heads: d_model / 64).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tformer.data.batching import token_budget_batches
from tformer.decoding.translator import BUNDLED_MODEL
from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.text.bpe import BPETokenizer
from tformer.training.data import collate, encode_pairs, training_corpus
from tformer.training.losses import batch_loss
from tformer.training.optim import param_groups
from tformer.training.recipe import Recipe


def model_for(size: str, vocab: int, tok: BPETokenizer) -> Seq2SeqTransformer:
    d_model, enc, dec, d_ff = (int(x) for x in size.split("x"))
    cfg = TransformerConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, d_model=d_model, num_heads=d_model // 64,
                            num_encoder_layers=enc, num_decoder_layers=dec, d_ff=d_ff, max_len=256,
                            pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id, unk_id=tok.unk_id)
    return Seq2SeqTransformer(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--sizes", default="256x4x3x1024,320x6x4x1280,384x4x3x1536")
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=0, help="vocabulary size (default: the recipe's)")
    args = parser.parse_args()

    recipe = Recipe.from_file(args.recipe)
    cfg = recipe.train
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    tok = BPETokenizer.from_pretrained(BUNDLED_MODEL)
    corpus = training_corpus(recipe.data, cfg.seed)
    pairs = encode_pairs(tok.encode_batch(corpus.src), tok.encode_batch(corpus.tgt),
                         recipe.data.max_tokens_per_sentence)
    epoch_tokens = sum(len(t) + 1 for _, t in pairs)
    batches = token_budget_batches([max(len(s), len(t)) + 1 for s, t in pairs], cfg.max_tokens, cfg.seed, 0)
    print(f"{len(pairs)} pairs, {epoch_tokens} target tokens per epoch, {len(batches)} batches of <= "
          f"{cfg.max_tokens} tokens; threads {torch.get_num_threads()}, bf16 {cfg.bf16}; load {os.getloadavg()}")
    vocab = args.vocab or recipe.tokenizer.vocab_size
    for size in args.sizes.split(","):
        torch.manual_seed(0)
        model = model_for(size, vocab, tok)
        optimizer = torch.optim.AdamW(param_groups(model, 0.0), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
        times, cpu_times, tokens = [], [], 0
        for k, indices in enumerate(batches[: args.updates + 1]):
            batch = collate([pairs[i] for i in indices], tok.pad_id, tok.bos_id, tok.eos_id)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss, _ = batch_loss(model, batch, cfg.label_smoothing, tok.pad_id, None, cfg.bf16)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if k:  # the first update warms up allocators and kernels
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
                tokens += batch.num_target_tokens(tok.pad_id)
        ms = 1000 * statistics.median(times)
        tok_s = tokens / sum(times)
        params = sum(p.numel() for p in model.parameters())
        cpu_ms = 1000 * statistics.median(cpu_times)  # CPU time: less dependent on what else runs than wall time
        print(f"{size}: {params / 1e6:.1f}M parameters ({2 * params / 1e6:.1f} MB float16), {ms:.0f} ms/update "
              f"(median of {len(times)}; CPU {cpu_ms:.0f} ms), {tok_s:.0f} target tokens/s, "
              f"{epoch_tokens / tok_s / 60:.0f} min/epoch; load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
