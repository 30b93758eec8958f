"""The access log: one line per request with method, path, status and milliseconds; none with --quiet."""

import re

from fastapi.testclient import TestClient

from tformer.cli.main import build_parser
from tformer.serve.app import create_app

from tests.serve.conftest import LIMITS

LINE = re.compile(r"^(GET|POST) (/\S*) (\d{3}) (\d+\.\d) ms$")


def test_every_request_gets_one_line_guard_refusals_included(models):
    lines = []
    with TestClient(create_app(models, LIMITS, api_key="sesame", access_log=lines.append)) as client:
        client.get("/")
        client.post("/translate", json={"text": "Hallo"}, headers={"Authorization": "Bearer sesame"})
        client.post("/translate", json={"text": ""}, headers={"Authorization": "Bearer sesame"})
        client.get("/health")  # no key: 401 from the guard
    parsed = [LINE.match(line).groups()[:3] for line in lines]
    assert parsed == [("GET", "/", "200"), ("POST", "/translate", "200"), ("POST", "/translate", "422"),
                      ("GET", "/health", "401")]


def test_no_access_log_unless_asked_and_quiet_is_a_serve_flag(models):
    with TestClient(create_app(models, LIMITS)) as client:
        assert client.get("/health").status_code == 200  # works without a log
    assert build_parser().parse_args(["serve", "--quiet"]).quiet is True
    assert build_parser().parse_args(["serve"]).quiet is False
