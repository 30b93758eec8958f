"""Clients that give up, against the bundled model: they send beam-4 translations and hang up
after 0.3 s, then one normal request is timed. Prints the queue length after the clients left, how many requests
the model computed, and the normal request's status and seconds.

    HF_HUB_OFFLINE=1 .venv/bin/python -m scripts.abandoned_requests [--clients 250]
"""

import argparse
import json
import socket
import time

import httpx
import torch

from tformer import Translator
from tformer.decoding.translator import default_model_dir
from tformer.serve.app import create_app
from tformer.serve.models import ServedModels
from tformer.serve.schemas import ServeLimits

from tests.serve.live import LiveServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    app = create_app(ServedModels(Translator.from_pretrained(default_model_dir())), ServeLimits())
    with LiveServer(app) as url:
        httpx.post(f"{url}/translate", json={"text": "Aufwärmen."}, timeout=60)
        port = int(url.rsplit(":", 1)[1])
        sockets = []
        for i in range(args.clients):
            body = json.dumps({"text": f"Ein Kind spielt {i} Mal mit einem roten Ball im Garten.", "beam": 4}).encode()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            sockets.append(sock)
        time.sleep(0.3)
        for sock in sockets:
            sock.close()  # the clients give up
        time.sleep(0.5)
        queued = app.state.batcher.queue.qsize()
        t0 = time.perf_counter()
        try:
            status = httpx.post(f"{url}/translate", json={"text": "Zwei Hunde spielen im Schnee."},
                                timeout=150).status_code
        except httpx.TimeoutException:
            status = "timeout"
        seconds = time.perf_counter() - t0
        computed = app.state.batcher.stats.jobs
    print(json.dumps({"clients": args.clients, "queued_after_clients_left": queued, "requests_computed": computed,
                      "normal_request_status": status, "normal_request_s": round(seconds, 2)}))


if __name__ == "__main__":
    main()
