"""The everyday-German recipes (issue 19): they parse, the model fits the 40 MB float16 bundle limit, each stage
fits the 150-minute stage limit, and stage 2 starts from the folder stage 1 is bundled into."""

import re
from pathlib import Path

from tformer.models.config import TransformerConfig
from tformer.models.seq2seq import Seq2SeqTransformer
from tformer.training.recipe import Recipe

STAGES = sorted(Path("recipes").glob("everyday_stage*.toml"))


def test_stage1_model_fits_the_bundle_and_the_stages_fit_the_time():
    assert [p.name for p in STAGES][:2] == ["everyday_stage1.toml", "everyday_stage2.toml"]
    stage1 = Recipe.from_file(STAGES[0])
    vocab = stage1.tokenizer.vocab_size
    model = Seq2SeqTransformer(TransformerConfig(**stage1.model, src_vocab_size=vocab, tgt_vocab_size=vocab))
    assert 2 * model.num_parameters() <= 40e6  # float16 bytes
    recipes = [Recipe.from_file(p) for p in STAGES]
    assert all(0 < r.train.max_minutes <= 150 for r in recipes)
    assert sum(r.train.max_minutes for r in recipes) <= 300
    assert not stage1.train.init_from and all(r.train.init_from for r in recipes[1:])
    for recipe in recipes:
        assert recipe.data.tatoeba_max_pairs == -1 and recipe.data.name_vowel_share > 0
        assert recipe.data.place_substitutions > 0 and recipe.data.number_pairs > 0


def test_each_later_stage_starts_from_the_committed_folder_the_previous_stage_is_bundled_into():
    for previous, stage in zip(STAGES, STAGES[1:]):
        bundled_into = re.search(r"bundle_model\.py \S+ --out (\S+)", previous.read_text()).group(1)
        assert Recipe.from_file(stage).train.init_from == bundled_into
        assert not bundled_into.startswith("runs/")  # committed, not a local run folder
