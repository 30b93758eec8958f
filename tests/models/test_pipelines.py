"""SentenceEncoder equals sentence-transformers; TextClassifier's probabilities come from the model's logits."""

import pytest
import torch

from tformer.models.bert import BertForSequenceClassification
from tformer.models.pipelines import SentenceEncoder, TextClassifier, mean_pool
from tformer.pretrained import resolve_pretrained
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import save_tiny_classifier

TEXTS = [
    "Transformers are amazing for NLP.",
    "A man is eating food.",
    "Ein Mann isst Essen, Ünïcödé 中文.",
    "x",
    "long " * 300,  # beyond MiniLM's max_seq_length of 256: truncated the same way
]


def test_sentence_embeddings_equal_sentence_transformers_encode():
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(resolve_pretrained("minilm")), device="cpu")
    expected = torch.from_numpy(reference.encode(TEXTS, batch_size=2))
    ours = SentenceEncoder.from_pretrained("minilm").encode(TEXTS, batch_size=2)
    assert ours.shape == (5, 384)
    assert (ours - expected).abs().max() < 1e-5
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(5))


def test_mean_pool_averages_only_real_tokens():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)


def test_text_classifier_probabilities_are_the_softmax_of_the_logits_in_input_order(tmp_path):
    save_tiny_classifier(tmp_path, labels=("bad", "good", "meh"))
    classifier = TextClassifier.from_pretrained(tmp_path)
    texts = ["the film was great", "awful", "i love this movie , it is brilliant"]
    probs = classifier.predict_proba(texts, batch_size=2)
    model, tokenizer = BertForSequenceClassification.from_pretrained(tmp_path), Tokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        expected = torch.softmax(model(**tokenizer(texts)).logits, dim=-1)
    assert (probs - expected).abs().max() < 1e-5
    predictions = classifier.predict(texts)
    assert [p.label for p in predictions] == [classifier.labels[int(k)] for k in expected.argmax(-1)]


def test_one_string_gives_one_vector_and_one_prediction(tmp_path):
    from tests.models.bert_helpers import save_tiny_encoder

    encoder = SentenceEncoder.from_pretrained(save_tiny_encoder(tmp_path / "encoder"))
    vector = encoder.encode("hi there")
    assert vector.dim() == 1
    torch.testing.assert_close(vector, encoder.encode(["hi there", "something else"])[0])
    save_tiny_classifier(tmp_path / "classifier")
    classifier = TextClassifier.from_pretrained(tmp_path / "classifier")
    assert classifier.predict_proba("a fine film").shape == (len(classifier.labels),)
    assert classifier.predict("a fine film") == classifier.predict(["a fine film"])[0]
    for wrong in (b"bytes", 7, None):
        with pytest.raises(TypeError, match="string or a list of strings"):
            encoder.encode(wrong)
        with pytest.raises(TypeError, match="string or a list of strings"):
            classifier.predict(wrong)
