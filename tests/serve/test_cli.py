import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

from tformer.cli.main import main

from tests.cli.conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_answers_and_stops_on_ctrl_c(tiny_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TFORMER_MODELS": str(tmp_path)}  # no bundled classifier there
    proc = subprocess.Popen([sys.executable, "-m", "tformer.cli.main", "serve", "--model", str(tiny_model_dir),
                             "--encoder", "none", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                health = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "tformer serve did not come up"
                time.sleep(0.3)
        r = httpx.post(f"{url}/translate", json={"text": "Ein Hund läuft.", "beam": 1}, timeout=60)
        classify = httpx.post(f"{url}/classify", json={"texts": ["fine"]}, timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
    assert health.json()["models"]["translator"]["name"] == tiny_model_dir.name
    assert health.json()["models"]["encoder"] is None
    assert r.status_code == 200 and isinstance(r.json()["translation"], str)
    assert classify.status_code == 503  # no runs/sst2-minilm/best in this working directory
    assert f"open http://127.0.0.1:{port}/" in out and "/classify answers 503" in out
    assert proc.returncode == 0, out
    assert re.search(r"^POST /translate 200 \d+\.\d ms$", out, re.M), out  # the access log, one line a request
    assert re.search(r"^POST /classify 503 \d+\.\d ms$", out, re.M), out


def test_serve_refuses_bad_settings_before_loading_anything():
    r = run_cli("serve", "--max-queue", "0")
    assert r.returncode == 2
    assert b"tformer serve: error: argument --max-queue: expected a whole number of 1 or more, got '0'" in r.stderr


def test_serve_names_a_missing_model_folder(tmp_path):
    r = run_cli("serve", "--model", str(tmp_path / "nowhere"), "--encoder", "none")
    assert r.returncode == 1 and b"model folder not found" in r.stderr


def test_serve_refuses_another_address_without_an_api_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TFORMER_API_KEY", raising=False)
    nowhere = str(tmp_path / "nowhere")
    for host in ("0.0.0.0", "192.168.1.7", "::", "example.org"):
        assert main(["serve", "--host", host, "--model", nowhere, "--encoder", "none"]) == 1
        assert f"refusing to serve on {host} without an API key" in capsys.readouterr().err
    allowed = [("--host", "0.0.0.0", "--insecure"), ("--host", "0.0.0.0", "--api-key", "k"), ("--host", "127.0.0.2"),
               ("--host", "localhost"), ("--host", "::1")]
    for extra in allowed:  # past the check, the missing model folder is the next error
        assert main(["serve", *extra, "--model", nowhere, "--encoder", "none"]) == 1
        assert "model folder not found" in capsys.readouterr().err, extra
    monkeypatch.setenv("TFORMER_API_KEY", "from-the-environment")
    assert main(["serve", "--host", "0.0.0.0", "--model", nowhere, "--encoder", "none"]) == 1
    assert "model folder not found" in capsys.readouterr().err


def test_serve_with_an_api_key_answers_401_without_it(tiny_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TFORMER_API_KEY": "k3y"}
    proc = subprocess.Popen([sys.executable, "-m", "tformer.cli.main", "serve", "--model", str(tiny_model_dir),
                             "--encoder", "none", "--port", str(port), "--threads", "1", "--request-timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                refused = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "tformer serve did not come up"
                time.sleep(0.3)
        allowed = httpx.get(f"{url}/health", headers={"Authorization": "Bearer k3y"}, timeout=5)
        page = httpx.get(f"{url}/", timeout=5)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
    assert refused.status_code == 401 and allowed.status_code == 200 and page.status_code == 200, out
    assert allowed.json()["limits"]["request_timeout_s"] == 30
