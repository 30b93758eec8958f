"""The page's classify and summarize panels in a real headless Chromium: the labels and the summary the API gives,
the server's own classifier offered first and the bundled spam classifier by name, notes for a one-sentence
document, and the API's error for a blank one."""

import httpx

from tformer.serve.app import create_app

from tests.serve.live import LiveServer
from tests.serve.test_browser import browser, pytestmark  # noqa: F401  the Chromium fixture and its skip rule
from tests.serve.test_classify_routes import bundled_root  # noqa: F401  tiny stand-ins for the bundled classifiers
from tests.serve.test_summarize_routes import DOCUMENT

TEXTS = ["the movie was great", "call now to claim your free prize"]


def labels_in(page) -> list[tuple[str, str]]:
    rows = page.locator("#cls-table tbody tr")
    return [(rows.nth(i).locator("td.text").inner_text(), rows.nth(i).locator("td.label").inner_text())
            for i in range(rows.count())]


def test_classify_and_summarize_panels(models, browser, bundled_root, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TFORMER_MODELS", str(bundled_root))
    with LiveServer(create_app(models)) as url:
        own = httpx.post(f"{url}/classify", json={"texts": TEXTS}, timeout=60).json()
        spam = httpx.post(f"{url}/classify", json={"texts": TEXTS, "model": "spam"}, timeout=60).json()
        summary = httpx.post(f"{url}/summarize", json={"text": DOCUMENT, "sentences": 2}, timeout=60).json()
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#models').textContent.startsWith('tformer ')")

        assert page.input_value("#cls-model") == ""  # the server's own classifier (tiny-sentiment) comes first
        page.fill("#cls-texts", "\n".join(TEXTS) + "\n\n")
        page.click("#cls-run")
        page.wait_for_selector("#cls-result.shown", timeout=60_000)
        assert labels_in(page) == [(t, p["label"]) for t, p in zip(TEXTS, own["predictions"])]
        assert page.inner_text("#cls-meta").startswith("tiny-sentiment")
        page.select_option("#cls-model", "spam")
        page.click("#cls-run")
        page.wait_for_function("document.querySelector('#cls-meta').textContent.startsWith('sms-spam')")
        assert labels_in(page) == [(t, p["label"]) for t, p in zip(TEXTS, spam["predictions"])]

        page.fill("#sum-text", DOCUMENT)
        page.select_option("#sum-sentences", "2")
        page.click("#sum-run")
        page.wait_for_selector("#sum-result.shown", timeout=60_000)
        assert page.locator("#sum-summary p").all_inner_texts() == summary["sentences"]
        assert "extractive · tiny-bert · 2 of 5 sentences" in page.inner_text("#sum-meta")
        page.fill("#sum-text", "A lovely story about a dog.")
        page.click("#sum-run")
        page.wait_for_function("document.querySelector('#sum-notes').textContent.includes('one sentence')")

        page.fill("#sum-text", "   ")
        page.click("#sum-run")
        page.wait_for_selector("#sum-error.shown", timeout=30_000)
        assert "text: is blank" in page.inner_text("#sum-error")
        assert not page.is_visible("#sum-result")
        page.close()
    assert problems == [], problems
