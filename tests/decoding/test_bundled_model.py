"""The bundled model (models/multi30k-de-en): quality against its model card, the seed's example, and batch
invariance of greedy and beam search on real sentences."""

import json
import random

import pytest

from tformer import Translator
from tformer.data.corpus import multi30k
from tformer.decoding.translator import BUNDLED_MODEL
from tformer.evaluation.bleu import corpus_bleu
from tformer.evaluation.names import name_copy_rate

CARD_FIGURES = BUNDLED_MODEL / "results.json"


@pytest.fixture(scope="module")
def translator():
    assert (BUNDLED_MODEL / "model.safetensors").is_file(), f"the bundled model is missing from {BUNDLED_MODEL}"
    return Translator.from_pretrained(BUNDLED_MODEL)


@pytest.mark.slow
def test_bleu_on_the_first_200_test_sentences_matches_the_model_card(translator):
    figures = json.loads(CARD_FIGURES.read_text())["multi30k_test_first200_beam4"]
    test = multi30k("test_2016_flickr")
    hyps = translator.translate(test.src[:200], beam=4, length_penalty=figures["length_penalty"])
    bleu = corpus_bleu(hyps, test.tgt[:200])
    assert bleu >= figures["bleu"] - 1.0, f"BLEU {bleu:.2f} is below the model card's {figures['bleu']:.2f} - 1"


def test_the_seed_example_translates(translator):
    assert translator.translate(["Ich bin Piyush."], beam=4)[0] in {"I am Piyush.", "I'm Piyush."}
    assert translator.translate(["Ich bin Piyush."], beam=1)[0] in {"I am Piyush.", "I'm Piyush."}


@pytest.mark.slow
def test_unseen_names_are_copied_as_often_as_the_model_card_says(translator):
    figures = json.loads(CARD_FIGURES.read_text())["held_out_names_copied_beam4"]
    result = name_copy_rate(lambda src: translator.translate(src, beam=4), frames=figures["frames"])  # tuned penalty
    assert result.total == figures["total"]
    assert result.rate >= figures["rate"] - 0.03, f"copied {result.copied}/{result.total}, card says {figures['rate']}"


def test_everyday_sentences_with_known_names_translate(translator):
    assert translator.translate(["Ich bin Tom."], beam=4)[0] in {"I am Tom.", "I'm Tom."}


@pytest.mark.slow
@pytest.mark.parametrize("beam", [1, 4])
def test_translations_do_not_depend_on_the_rest_of_the_batch(translator, beam):
    sample = random.Random(7).sample(multi30k("test_2016_flickr").src, 200)
    alone = [translator.translate([s], beam=beam)[0] for s in sample]
    for batch_size in (7, 32):
        order = list(range(len(sample)))
        random.Random(batch_size).shuffle(order)
        shuffled = translator.translate([sample[i] for i in order], beam=beam, batch_size=batch_size)
        for pos, i in enumerate(order):
            assert shuffled[pos] == alone[i], f"sentence {i} differs in a batch of {batch_size}: {sample[i]!r}"
