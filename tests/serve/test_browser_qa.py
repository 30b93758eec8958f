"""The page's question-answering panel in a real headless Chromium: paste documents, ask, and see the answer
highlighted in its passage (the same answer the API gives); an empty question shows the API's error."""

import httpx

from tformer.models.qa_pipeline import QuestionAnswerer
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels
from tformer.serve.qa import QAService
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import write_vocab_folder
from tests.models.test_bert_qa import tiny_qa
from tests.serve.live import LiveServer
from tests.serve.test_browser import browser, pytestmark  # noqa: F401  the Chromium fixture and its skip rule

DOCS = "the movie was good but the plot was dull .\n---\nthis film is very boring and the plot is terrible ."


def test_ask_documents_and_see_the_answer_highlighted(translator, encoder, browser, tmp_path):  # noqa: F811
    reader = QuestionAnswerer(tiny_qa(), Tokenizer.from_pretrained(write_vocab_folder(tmp_path)), max_length=40)
    app = create_app(ServedModels(translator, encoder), qa=QAService(reader))
    with LiveServer(app) as url:
        question = "is the plot dull"
        expected = httpx.post(f"{url}/ask", json={"question": question, "documents": [
            d.strip() for d in DOCS.split("---")]}, timeout=60).json()["answers"][0]
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.goto(url + "/")
        page.fill("#qa-docs", DOCS)
        page.fill("#qa-question", question)
        page.click("#qa-ask")
        page.wait_for_selector("#qa-result.shown", timeout=60_000)
        assert page.inner_text("#qa-answer") == expected["answer"]
        assert page.inner_text("#qa-passage mark") == expected["answer"]
        assert page.text_content("#qa-passage") == expected["passage"]
        page.fill("#qa-question", "   ")
        page.click("#qa-ask")
        page.wait_for_selector("#qa-error.shown", timeout=30_000)
        assert "question: is blank" in page.inner_text("#qa-error")
        page.close()
    assert problems == [], problems
