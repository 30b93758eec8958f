"""The everyday-German recipes (issue 19): they parse, the model fits the 40 MB float16 bundle limit, each stage
fits the 150-minute stage limit (about 5 hours in all), and each stage starts from a committed folder: today's
model, or the folder the previous stage is bundled into."""

import json
import re
from pathlib import Path

from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.training.recipe import Recipe

RECIPES = Path("recipes")
FIRST_STAGES = sorted(RECIPES.glob("everyday_stage1*.toml"))  # everyday_stage1.toml and its larger alternative
LATER_STAGES = sorted(set(RECIPES.glob("everyday_stage*.toml")) - set(FIRST_STAGES))


def parameters(recipe: Recipe) -> int:
    if recipe.train.init_from:  # the shape comes from the folder it starts from
        config = json.loads((Path(recipe.train.init_from) / "config.json").read_text())
        return Seq2SeqTransformer(TransformerConfig.from_dict(config)).num_parameters()
    vocab = recipe.tokenizer.vocab_size
    return Seq2SeqTransformer(TransformerConfig(**recipe.model, src_vocab_size=vocab,
                                                tgt_vocab_size=vocab)).num_parameters()


def test_every_first_stage_fits_the_bundle_and_the_stages_fit_the_time():
    assert [p.name for p in FIRST_STAGES] == ["everyday_stage1.toml", "everyday_stage1_scratch.toml"]
    assert LATER_STAGES and LATER_STAGES[0].name == "everyday_stage2.toml"
    for path in FIRST_STAGES:
        assert 2 * parameters(Recipe.from_file(path)) <= 40e6, path  # float16 bytes
    for path in FIRST_STAGES + LATER_STAGES:
        recipe = Recipe.from_file(path)
        assert 0 < recipe.train.max_minutes <= 150
        assert recipe.data.tatoeba_max_pairs == -1 and recipe.data.name_vowel_share > 0
        assert recipe.data.place_substitutions > 0 and recipe.data.number_pairs > 0
    # the stages the everyday model was trained in: from scratch, then every later stage (the card lists them)
    assert sum(Recipe.from_file(p).train.max_minutes for p in FIRST_STAGES[1:] + LATER_STAGES) <= 300


def test_each_stage_starts_from_a_committed_folder():
    assert Recipe.from_file(FIRST_STAGES[0]).train.init_from == "models/multi30k-de-en"
    assert not Recipe.from_file(FIRST_STAGES[1]).train.init_from  # from random weights
    bundled = {re.search(r"bundle_model\.py \S+ --out (\S+)", p.read_text()).group(1) for p in FIRST_STAGES}
    assert bundled == {"models/multi30k-de-en-next"}
    for stage in LATER_STAGES:
        assert Recipe.from_file(stage).train.init_from == "models/multi30k-de-en-next"
