"""The page against a server started with an API key, in a real headless Chromium: with ``#key=KEY`` in the address
the page sends the key and translates without asking; without it, the page asks for the key on the first 401, shows
the server's 401 message when the prompt is dismissed, and works once the key is typed into the prompt."""

import httpx

from tformer.serve.app import create_app
from tformer.serve.guard import UNAUTHORIZED
from tformer.serve.models import ServedModels

from tests.serve.live import LiveServer
from tests.serve.test_browser import browser, pytestmark  # noqa: F401  the Chromium fixture and its skip rule

KEY = "0123456789abcdef+0123456789/abcdef"  # "+" and "/" must survive the address
SENTENCE = "Zwei Hunde spielen im Schnee."


def watch(page):
    """Collect page errors and console errors; 401s logged by the browser are expected here, so they are dropped."""
    problems = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" and "401" not in msg.text else None)
    return problems


def translate(page):
    page.fill("#source", SENTENCE)
    page.click("#translate")
    page.wait_for_function("!document.querySelector('#translate').disabled", timeout=60_000)


def test_the_page_sends_the_key_from_its_address_or_asks_for_it(translator, browser):  # noqa: F811
    app = create_app(ServedModels(translator, names={"translator": "tiny-de-en"}), api_key=KEY)
    with LiveServer(app) as url:
        assert httpx.post(f"{url}/translate", json={"text": SENTENCE}, timeout=60).status_code == 401
        expected = httpx.post(f"{url}/translate", json={"text": SENTENCE, "beam": 4},
                              headers={"Authorization": f"Bearer {KEY}"}, timeout=60).json()["translation"]

        # With the key in the address: no prompt, the key leaves the address bar, model information and a
        # translation come back.
        page = browser.new_page()
        problems, dialogs = watch(page), []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{url}/#key={KEY}")
        page.wait_for_function("document.querySelector('#models').textContent.startsWith('tformer ')",
                               timeout=30_000)
        assert KEY not in page.url and "#" not in page.url
        translate(page)
        assert page.is_visible("#translate-result.shown")
        assert page.inner_text("#translation") == (expected or "(empty)")
        assert dialogs == [] and problems == [], (dialogs, problems)
        page.close()

        # Without it: the page asks at once (its model information needs the key). Dismissed, the prompt leaves
        # the page usable and the 401 explained; answered with the key, the page works and stops asking.
        page = browser.new_page()
        problems, dialogs, answer = watch(page), [], {"key": None}

        def on_dialog(dialog):
            dialogs.append((dialog.type, dialog.message))
            if answer["key"]:
                dialog.accept(answer["key"])
            else:
                dialog.dismiss()
        page.on("dialog", on_dialog)
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#models').textContent === 'model information unavailable'",
                               timeout=30_000)
        assert dialogs == [("prompt", "This server needs an API key:")]
        translate(page)
        assert page.is_visible("#translate-error.shown")
        assert page.inner_text("#translate-error") == UNAUTHORIZED
        assert not page.is_visible("#translate-result.shown")
        assert len(dialogs) == 2

        answer["key"] = KEY
        translate(page)
        assert len(dialogs) == 3
        assert page.is_visible("#translate-result.shown") and not page.is_visible("#translate-error.shown")
        assert page.inner_text("#translation") == (expected or "(empty)")
        translate(page)  # the key is kept for the tab: no more prompts
        assert len(dialogs) == 3 and page.inner_text("#translation") == (expected or "(empty)")
        assert problems == [], problems
        page.close()
