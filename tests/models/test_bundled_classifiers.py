"""The bundled classifiers (models/sst2-minilm, an adapter; models/sms-spam-minilm-lora, LoRA): they load by short
name on the packaged MiniLM, print label
names, and score on their development sets what their results.json (and model cards) say."""

import json

import pytest

from tformer.data.classification import label_ids, load_dataset
from tformer.evaluation.classification import accuracy, per_class_metrics
from tformer.models.classifiers import BUNDLED_CLASSIFIERS, bundled_classifier, stored_on_base
from tformer.models.pipelines import TextClassifier
from tformer.training.finetune import RECIPE, FinetuneConfig

LABELS = {"sentiment": ["negative", "positive"], "spam": ["ham", "spam"]}


def present(name):
    folder = bundled_classifier(name)
    if not stored_on_base(folder):
        pytest.skip(f"no bundled {name} classifier in {folder}")
    return folder


@pytest.mark.parametrize("name", sorted(BUNDLED_CLASSIFIERS))
def test_loads_by_name_with_label_names(name):
    present(name)
    classifier = TextClassifier.from_pretrained(name)
    assert classifier.labels == LABELS[name]
    assert {p.label for p in classifier.predict(["I love this movie", "Call now to claim your free prize!"])} \
        <= set(LABELS[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUNDLED_CLASSIFIERS))
def test_dev_scores_match_results_json(name):
    folder = present(name)
    results = json.loads((folder / "results.json").read_text())
    recipe = FinetuneConfig.from_json(folder / RECIPE)
    try:
        _, dev, labels = load_dataset(recipe.dataset())
    except Exception as err:  # the data folder is not there
        pytest.skip(f"no development data: {err}")
    classifier = TextClassifier.from_pretrained(folder)
    classifier.max_length = recipe.max_length
    predicted = classifier.predict_proba(dev.texts, batch_size=64).argmax(-1).tolist()
    gold = label_ids(dev, labels)
    assert accuracy(predicted, gold) == pytest.approx(results["accuracy"], abs=1.5 / len(gold))
    positive = "spam" if name == "spam" else "positive"
    assert per_class_metrics(predicted, gold, labels.index(positive))["f1"] == pytest.approx(
        results[positive]["f1"], abs=0.01)
