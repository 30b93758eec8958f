"""The page's chat panel in a real headless Chromium: a message gets the streamed reply the API gives, the
conversation goes on and starts again with "New chat", and a message the model cannot take shows the API's error."""

import httpx

from tformer.serve.app import create_app
from tformer.serve.generation import GenerationService
from tformer.serve.models import ServedModels

from tests.serve.live import LiveServer
from tests.serve.test_browser import browser, pytestmark  # noqa: F401  the Chromium fixture and its skip rule
from tests.serve.test_generation_routes import tiny_language_model


def test_chat_streams_the_reply_and_keeps_the_conversation(translator, browser):  # noqa: F811
    loaded = tiny_language_model()
    app = create_app(ServedModels(translator), generation=GenerationService("tiny-chars", lambda: loaded))
    with LiveServer(app) as url:
        first = [{"role": "user", "content": "ab?"}]
        expected = httpx.post(f"{url}/chat", json={"messages": first, "max_new_tokens": 200},
                              timeout=60).json()["message"]["content"]
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.goto(url + "/")
        page.fill("#chat-input", "ab?")
        page.click("#chat-send")
        page.wait_for_selector("#chat-log .chat-msg.assistant.done", timeout=60_000)
        assert page.inner_text("#chat-log .chat-msg.user") == "ab?"
        assert page.text_content("#chat-log .chat-msg.assistant") == expected
        second = first + [{"role": "assistant", "content": expected}, {"role": "user", "content": "cd"}]
        expected_second = httpx.post(f"{url}/chat", json={"messages": second, "max_new_tokens": 200},
                                     timeout=60).json()["message"]["content"]
        page.fill("#chat-input", "cd")
        page.click("#chat-send")
        page.wait_for_function("document.querySelectorAll('#chat-log .chat-msg.assistant.done').length === 2",
                               timeout=60_000)
        assert page.locator("#chat-log .chat-msg.assistant").nth(1).text_content() == expected_second
        page.click("#chat-reset")
        assert page.locator("#chat-log .chat-msg").count() == 0
        page.fill("#chat-input", "a" * 60)  # longer than the tiny model's context
        page.click("#chat-send")
        page.wait_for_selector("#chat-error.shown", timeout=30_000)
        assert page.inner_text("#chat-error").startswith("messages:")
        assert page.locator("#chat-log .chat-msg").count() == 0
        page.close()
    assert problems == [], problems
