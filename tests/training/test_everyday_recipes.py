"""The everyday-German recipes (issue 19): they parse, the model fits the 40 MB float16 bundle limit, each stage
fits the 150-minute stage limit (5 hours in all), and each stage starts from the folder the previous stage was
committed in (naming the commit), the shipped model being the last stage."""

import json
import re
from pathlib import Path

from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.training.recipe import Recipe

RECIPES = Path("recipes")
FIRST_STAGE = RECIPES / "everyday_stage1_scratch.toml"  # from random weights
LATER_STAGES = sorted(set(RECIPES.glob("everyday_stage*.toml")) - {FIRST_STAGE})
BUNDLED = Path("models/multi30k-de-en")  # where stage 3 was bundled, with stages 1 and 2's files


def parameters(recipe: Recipe) -> int:
    vocab = recipe.tokenizer.vocab_size
    return Seq2SeqTransformer(TransformerConfig(**recipe.model, src_vocab_size=vocab,
                                                tgt_vocab_size=vocab)).num_parameters()


def test_the_first_stage_fits_the_bundle_and_the_stages_fit_the_time():
    assert [p.name for p in LATER_STAGES] == ["everyday_stage2.toml", "everyday_stage3.toml"]
    first = Recipe.from_file(FIRST_STAGE)
    assert not first.train.init_from and 2 * parameters(first) <= 40e6  # float16 bytes
    shipped = json.loads((BUNDLED / "config.json").read_text())
    assert all(shipped[k] == v for k, v in first.model.items() if k in shipped and k != "dropout")
    for path in [FIRST_STAGE, *LATER_STAGES]:
        recipe = Recipe.from_file(path)
        assert 0 < recipe.train.max_minutes <= 150
        assert recipe.data.tatoeba_max_pairs == -1 and recipe.data.name_vowel_share > 0
        assert recipe.data.place_substitutions > 0 and recipe.data.number_pairs > 0
    assert sum(Recipe.from_file(p).train.max_minutes for p in [FIRST_STAGE, *LATER_STAGES]) <= 300


def test_each_stage_starts_from_the_folder_the_previous_one_was_committed_in():
    assert re.search(r"bundle_model\.py \S+ --out models/multi30k-de-en-next", FIRST_STAGE.read_text())
    for stage in LATER_STAGES:
        assert Recipe.from_file(stage).train.init_from == "models/multi30k-de-en-next"
        assert re.search(r"commit [0-9a-f]{7}", stage.read_text()), f"{stage} does not name its starting commit"
    stages = json.loads((BUNDLED / "results.json").read_text())["stage"]
    assert stages["stage"] == len(LATER_STAGES) + 1  # the shipped model is the last stage
    for n in range(1, len(LATER_STAGES) + 2):
        assert (BUNDLED / f"recipe-stage{n}.json").is_file() and (BUNDLED / f"curves-stage{n}.png").is_file()
