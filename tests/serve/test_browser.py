"""The web page in a real headless Chromium: translate a sentence, check the step table and the heatmaps, and save a
screenshot (tests/artifacts/serve-page.png). Skips when Chromium or Playwright is missing; .ci/run installs both."""

import os
from pathlib import Path

import httpx
import pytest

from tformer import Translator
from tformer.decoding.translator import REQUIRED_FILES, default_model_dir
from tformer.models.pipelines import SentenceEncoder
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels

from tests.serve.live import LiveServer

CHROMIUM = Path(os.environ.get("TFORMER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SENTENCE = "Ein Mann mit einem roten Hut sitzt auf einer Bank."

# .ci/run sets TFORMER_REQUIRE_BROWSER=1: there a missing browser fails the test instead of skipping it quietly.
REQUIRED = os.environ.get("TFORMER_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api
except ImportError:
    sync_api = None
if not CHROMIUM.is_file():
    MISSING = (f"no Chromium at {CHROMIUM}: install the Debian packages chromium and chromium-driver (as .ci/run "
               "does) or set TFORMER_CHROMIUM")
elif sync_api is None:
    MISSING = "Playwright for Python is not installed (pip install playwright; the browser comes from Debian)"
else:
    MISSING = ""
pytestmark = pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=MISSING)


@pytest.fixture(scope="module")
def page_models(translator, encoder):
    """The bundled translator and MiniLM when they are here, so the screenshot shows real attention; else tiny ones."""
    bundled, translator_name = default_model_dir(), "tiny-de-en"
    if all((bundled / name).is_file() for name in REQUIRED_FILES):
        translator, translator_name = Translator.from_pretrained(bundled), bundled.name
    try:
        encoder, encoder_name = SentenceEncoder.from_pretrained("minilm"), "minilm"
    except (OSError, ImportError):
        encoder_name = "tiny-bert"
    return ServedModels(translator, encoder, names={"translator": translator_name, "encoder": encoder_name})


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"TFORMER_REQUIRE_BROWSER=1 but {MISSING}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_translate_and_see_attention_in_a_real_browser(page_models, browser):
    with LiveServer(create_app(page_models)) as url:
        expected = httpx.post(f"{url}/translate", json={"text": SENTENCE, "beam": 4, "trace": True},
                              timeout=120).json()
        encoded = httpx.post(f"{url}/attention", json={"text": "The cat drank the milk because it was hungry."},
                             timeout=120).json()["attention"]["self"]
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = []
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.goto(url + "/")

        page.fill("#source", SENTENCE)
        page.click("#translate")
        page.wait_for_selector("#translate-result.shown", timeout=120_000)
        assert page.inner_text("#translation") == (expected["translation"] or "(empty)")
        source, target = expected["trace"]["source_tokens"], expected["trace"]["target_tokens"]
        assert page.locator("#cross-heatmap .cell").count() == len(source) * len(target)
        assert page.locator("#cross-heatmap .col").all_inner_texts() == source
        assert page.locator("#steps tbody tr").count() == len(target)

        page.select_option("#cross-head", "0")  # one head instead of the mean: same grid, other weights
        assert page.locator("#cross-heatmap .cell").count() == len(source) * len(target)
        page.locator("#cross-heatmap .cell").nth(len(source) + 1).hover()
        assert page.is_visible("#tip") and "→" in page.inner_text("#tip")

        page.click("#preset-it")
        page.wait_for_selector("#enc-result.shown", timeout=120_000)
        tokens = encoded["query_tokens"]
        assert page.locator("#enc-heatmap .cell").count() == len(tokens) ** 2
        assert page.locator("#focus-grid .fc").count() == encoded["layers"] * encoded["heads"]
        assert page.text_content("#focus-title") == "What “it” attends to, in every head"
        assert " heads link “it” most strongly to “cat” (outlined); shown: layer " in page.text_content("#focus-claim")
        page.click("#preset-country")  # the text's other examples are presets too
        page.wait_for_function("document.querySelector('#focus-title').textContent.includes('country')")
        assert "most strongly to “france”" in page.text_content("#focus-claim")

        page.mouse.move(0, 0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)

        page.fill("#source", "   ")
        page.click("#translate")
        page.wait_for_selector("#translate-error.shown", timeout=30_000)
        assert "text: is blank" in page.inner_text("#translate-error")
        page.close()
    assert problems == [] or all("422" in p for p in problems), problems  # the blank text's 422 may be logged
