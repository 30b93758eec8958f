import gzip

import pytest

from tformer.data.corpus import multi30k
from tformer.training.recipe import Recipe


@pytest.fixture(scope="session")
def small_data_root(tmp_path_factory):
    """A data folder with 300 training and 40 validation pairs sliced from Multi30k."""
    root = tmp_path_factory.mktemp("data")
    (root / "multi30k").mkdir()
    for split, n in (("train", 300), ("val", 40)):
        corpus = multi30k(split)
        for lang, lines in (("de", corpus.src[:n]), ("en", corpus.tgt[:n])):
            with gzip.open(root / "multi30k" / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
    return root


def tiny_recipe(root, **train) -> Recipe:
    return Recipe.from_dict({
        "model": {"d_model": 24, "num_heads": 3, "num_encoder_layers": 1, "num_decoder_layers": 1, "d_ff": 40,
                  "dropout": 0.1, "max_len": 128},
        "data": {"root": str(root)},
        "tokenizer": {"vocab_size": 300},
        "train": {"max_tokens": 400, "warmup_steps": 4, "epochs": 3, "eval_every": 3, "eval_sentences": 10,
                  "keep_last": 3, "average_last": 2, "threads": 1, **train},
    })
