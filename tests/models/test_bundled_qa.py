"""The bundled QA reader (models/qa-minilm-squad): a float16 adapter that loads on the packaged MiniLM and answers
SQuAD questions; a slice of the dev set guards its model card's F1 (the whole set: scripts/qa_benchmark.py)."""

import pytest

from tformer.data.squad import read_squad, squad_path
from tformer.evaluation.squad import squad_metrics
from tformer.models.qa_pipeline import QuestionAnswerer, resolve_qa_model


@pytest.fixture(scope="module")
def reader():
    return QuestionAnswerer.from_pretrained("squad")


def test_the_bundled_reader_is_small_and_answers_from_the_text(reader):
    folder = resolve_qa_model("squad")
    assert sum(p.stat().st_size for p in folder.iterdir()) < 25 * 2**20
    context = "The Eiffel Tower was finished in 1889. Gustave Eiffel's company built it for the World Fair in Paris."
    span = reader.answer("When was the Eiffel Tower finished?", context)[0]
    assert span.text == "1889" and context[span.start:span.end] == "1889"


@pytest.mark.slow
def test_f1_on_a_slice_of_the_dev_questions(reader):
    questions = read_squad(squad_path("dev"))[:120]
    predictions = {q.id: reader.answer(q.question, q.context)[0].text for q in questions}
    assert squad_metrics(predictions, {q.id: q.answers for q in questions})["f1"] >= 60
