"""The server under faults: clients that give up, requests that wait too long, bodies past the limit in any
transfer encoding, and the optional API key."""

import copy
import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tformer.serve.app import create_app
from tformer.serve.schemas import ServeLimits

from tests.serve.conftest import LIMITS
from tests.serve.live import LiveServer


class Gate:
    """A batch function that holds every model call until ``release`` is set, and records what it ran."""

    def __init__(self, run):
        self.run, self.started, self.release = run, threading.Event(), threading.Event()
        self.items: list = []

    def __call__(self, key, items):
        self.started.set()
        assert self.release.wait(60)
        self.items.extend(items)
        return self.run(key, items)


def gated(models):
    """A copy of ``models`` whose model calls wait at a gate."""
    held = copy.copy(models)
    held.run = Gate(models.run)
    return held


def raw_request(url: str, path: str, body: bytes, extra: str = "") -> socket.socket:
    """A POST sent over a plain socket, so the test decides when the client goes away."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sock = socket.create_connection((host, port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}".encode()
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---- clients that leave, requests that wait too long ----------------------------------------------------------

def test_requests_whose_clients_left_are_dropped_from_the_queue(models):
    held = gated(models)
    app = create_app(held, ServeLimits(max_batch_size=1, max_wait_ms=0, max_queue=64))
    with LiveServer(app) as url:
        first = raw_request(url, "/translate", b'{"text": "Ein Hund.", "beam": 1}')
        assert held.run.started.wait(30)  # the worker holds the first request
        abandoned = [raw_request(url, "/translate", json.dumps({"text": f"Satz {i}.", "beam": 1}).encode())
                     for i in range(12)]
        assert wait_until(lambda: app.state.batcher.queue.qsize() == 12)
        for sock in abandoned:
            sock.close()  # these clients give up
        assert wait_until(lambda: app.state.batcher.queue.qsize() == 0), app.state.batcher.queue.qsize()
        held.run.release.set()
        later = httpx.post(f"{url}/translate", json={"text": "Eine Katze.", "beam": 1}, timeout=30)
        first.close()
    assert later.status_code == 200
    assert held.run.items == ["Ein Hund.", "Eine Katze."]  # nothing was computed for the clients that left


def test_a_request_over_the_time_limit_is_503_while_queued_and_504_once_running(models):
    held = gated(models)
    limits = ServeLimits(max_batch_size=1, max_wait_ms=0, request_timeout_s=0.5)
    with TestClient(create_app(held, limits)) as client, ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/translate", json={"text": "Ein Hund.", "beam": 1})
        assert held.run.started.wait(30)
        queued = pool.submit(client.post, "/translate", json={"text": "Eine Katze.", "beam": 1})
        running, queued = running.result(30), queued.result(30)
        held.run.release.set()
        assert client.get("/health").json()["queued"] == 0
        assert client.post("/translate", json={"text": "Ein Haus.", "beam": 1}).status_code == 200
    assert running.status_code == 504 and "0.5 s" in running.json()["error"]
    assert queued.status_code == 503 and "--request-timeout" in queued.json()["error"]
    assert queued.headers["retry-after"] == "1"
    assert "Eine Katze." not in held.run.items  # it left the queue without reaching the model


# ---- body size, whatever the transfer encoding ----------------------------------------------------------------

def test_a_chunked_body_over_the_limit_is_413_in_the_test_client(client):
    chunks = (b"x" * 4096 for _ in range(LIMITS.max_body_bytes // 4096 + 2))
    r = client.post("/translate", content=chunks, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert f"the limit is {LIMITS.max_body_bytes}" in r.json()["error"]


def test_a_chunked_body_is_refused_while_it_is_still_arriving(models):
    """Over a real socket: the 413 comes back long before the client has sent its 50 MB."""
    limit = LIMITS.max_body_bytes
    with LiveServer(create_app(models, LIMITS)) as url:
        sock = socket.create_connection((urlsplit(url).hostname, urlsplit(url).port))
        sock.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk, sent, answer = b"x" * 65536, 0, b""
        sock.settimeout(10)
        while sent < 50_000_000:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        sock.close()
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"the limit is %d" % limit in rest
    assert sent < 20_000_000  # the server stopped at the limit; it did not read the whole body first


def test_a_body_just_under_the_limit_still_passes_when_chunked(client):
    body = json.dumps({"texts": ["a good film"] * 3}).encode()
    r = client.post("/classify", content=(body[i:i + 7] for i in range(0, len(body), 7)),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


# ---- the API key ----------------------------------------------------------------------------------------------

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed(models):
    with TestClient(create_app(models, LIMITS, api_key=KEY)) as test_client:
        yield test_client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                                     {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"}])
def test_without_the_right_key_requests_get_401(keyed, headers):
    for method, path in (("POST", "/translate"), ("GET", "/health"), ("POST", "/embed"), ("GET", "/nowhere")):
        r = keyed.request(method, path, json={"text": "Hallo"}, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert "Authorization: Bearer" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"


def test_with_the_key_requests_pass_and_the_page_loads_without_it(keyed, translator):
    auth = {"Authorization": f"Bearer {KEY}"}
    r = keyed.post("/translate", json={"text": "Ein Hund.", "beam": 1}, headers=auth)
    assert r.status_code == 200 and r.json()["translation"] == translator.translate(["Ein Hund."], 1)[0]
    assert keyed.get("/health", headers={"authorization": f"bearer {KEY}"}).status_code == 200
    page = keyed.get("/")
    assert page.status_code == 200 and "Authorization" in page.text  # the page sends the key it is given
    assert keyed.get("/docs").status_code == 200 and keyed.get("/openapi.json").status_code == 200


def test_the_key_is_compared_in_constant_time(monkeypatch, models):
    import hmac

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    with TestClient(create_app(models, LIMITS, api_key=KEY)) as c:
        assert c.get("/health", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert compared == [(b"nope", KEY.encode())]


def test_a_byte_order_mark_at_the_start_of_a_text_is_dropped(client, translator):
    r = client.post("/translate", json={"text": "\ufeffEin Hund läuft.", "beam": 1})
    assert r.status_code == 200, r.text
    assert r.json()["translation"] == translator.translate(["Ein Hund läuft."], 1)[0]
    assert client.post("/translate", json={"text": "\ufeff"}).status_code == 422  # nothing left: blank
