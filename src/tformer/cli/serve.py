"""`tformer serve`: the HTTP API and the web page, with the models loaded once."""

from __future__ import annotations

import argparse
import ipaddress
import os

from tformer.cli.numbers import non_negative_float, port, positive_float, positive_int
from tformer.cli.options import add_device
from tformer.training.finetune import BEST, DEFAULT_OUT

DEFAULT_CLASSIFIER = f"{DEFAULT_OUT}/{BEST}"
API_KEY_ENV = "TFORMER_API_KEY"
HELP = "Serve translation, attention, embeddings and classification over HTTP, with a web page at /."
DESCRIPTION = HELP + """ Open http://HOST:PORT/ in a browser to translate German sentences and see the decoding
steps and attention; the JSON API (POST /translate, /classify, /summarize, /embed, /attention, /search, /ask,
/generate, /chat; GET /health) is documented at /docs. Requests that arrive within --batch-wait-ms of each other
share one model call. Stop with Ctrl-C."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=HELP, description=DESCRIPTION)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 makes the server reachable "
                   "from other machines (default: %(default)s, this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port to listen on (default: %(default)s)")
    p.add_argument("--model", help="translation model folder (default: the bundled models/multi30k-de-en, or "
                   "$TFORMER_MODEL)")
    p.add_argument("--classifier", help="text classifier for /classify: a folder, or a bundled one by name "
                   f"(sentiment, spam) (default: the bundled sentiment classifier, else {DEFAULT_CLASSIFIER} when "
                   "it exists, written by `tformer finetune`; without one /classify answers 503)")
    p.add_argument("--encoder", default="minilm", help="BERT sentence encoder for /embed and the English "
                   "attention panel: a folder or short name, or 'none' (default: %(default)s)")
    p.add_argument("--index", metavar="INDEX", help="passage index (made by `tformer index`) for POST /search and "
                   "POST /ask (default: none; /ask then needs documents in the request)")
    p.add_argument("--qa-model", default="squad", help="QA reader for POST /ask: a folder, 'squad' (the bundled "
                   "one, the default) or 'none'")
    p.add_argument("--chat-model", default="smollm2", help="language model for POST /generate, POST /chat and the "
                   "page's chat panel, loaded at the first such request: smollm2 (the default), a GGUF file, a "
                   "model or run folder, or shakespeare-char")
    p.add_argument("--max-chars", type=positive_int, default=1000, help="longest text accepted, in characters "
                   "(default: %(default)s)")
    p.add_argument("--max-batch-size", type=positive_int, default=32, help="most texts in one model call, and in one "
                   "/classify or /embed request (default: %(default)s)")
    p.add_argument("--max-queue", type=positive_int, default=256,
                   help="requests allowed to wait for the model; more are "
                   "answered 503 at once (default: %(default)s)")
    p.add_argument("--batch-wait-ms", type=non_negative_float, default=5.0,
                   help="how long a request waits for others to "
                   "share its model call (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for the models (default: PyTorch's choice)")
    p.add_argument("--request-timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="longest a request may "
                   "wait for its answer: past it, a request still queued is answered 503 and one whose model call "
                   "is running 504 (default: %(default)s)")
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV), help="require 'Authorization: Bearer KEY' "
                   f"on every request but the page and /docs (default: ${API_KEY_ENV}; none = no key needed). "
                   "The page asks for the key, or takes it from its address: http://HOST:PORT/#key=KEY")
    p.add_argument("--insecure", action="store_true", help="allow a --host other than this machine without an "
                   "API key (anyone who can reach the port can use the server)")
    p.add_argument("--quiet", action="store_true", help="no access log (by default one line per request on stdout: "
                   "method, path, status, milliseconds)")
    add_device(p)
    p.set_defaults(run=run)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def load_qa(model: str, index: str | None):
    """The /ask reader and /search index; a missing bundled reader is said, not fatal (the routes answer 503)."""
    from tformer.errors import ModelFolderError
    from tformer.models.qa_pipeline import QuestionAnswerer
    from tformer.serve.qa import QAService

    reader = None
    if model.lower() != "none":
        try:
            reader = QuestionAnswerer.from_pretrained(model)
        except ModelFolderError as err:
            if model != "squad":
                raise
            print(f"tformer serve: {err}; /ask answers 503", flush=True)
    print(f"tformer serve: QA reader: {model if reader else 'none'}; index: {index or 'none'}", flush=True)
    return QAService(reader, index) if reader or index else None


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from tformer.serve.app import create_app
    from tformer.serve.models import load_models
    from tformer.serve.schemas import ServeLimits

    limits = ServeLimits(max_chars=args.max_chars, max_batch_size=args.max_batch_size, max_queue=args.max_queue,
                         max_wait_ms=args.batch_wait_ms, request_timeout_s=args.request_timeout)  # before the slow part
    if not args.api_key and not args.insecure and not is_loopback(args.host):
        raise ValueError(f"refusing to serve on {args.host} without an API key: anyone who reaches the port could "
                         f"use it. Give --api-key KEY (or set ${API_KEY_ENV}), or --insecure to serve without one")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    classifier = args.classifier
    if classifier is None:
        from tformer.cli.classify import default_model

        try:
            classifier = default_model()  # the bundled sentiment classifier, else DEFAULT_CLASSIFIER
        except FileNotFoundError:
            classifier = None
    encoder = None if args.encoder.lower() == "none" else args.encoder
    models = load_models(args.model, encoder, classifier, device=args.device)
    qa = load_qa(args.qa_model, args.index)
    for role, info in models.info.items():
        print(f"tformer serve: {role}: " + (f"{info.name} ({info.version})" if info else "none"), flush=True)
    if classifier is None:
        print(f"tformer serve: no classifier at {DEFAULT_CLASSIFIER}: /classify answers 503 until you make one "
              "with `tformer finetune`", flush=True)
    print(f"tformer serve: open http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    if args.api_key:
        print("tformer serve: requests need 'Authorization: Bearer KEY' (the page: add #key=KEY to its address)",
              flush=True)
    from tformer.serve.access import print_line
    from tformer.serve.generation import GenerationService

    app = create_app(models, limits, api_key=args.api_key or None, qa=qa, access_log=None if args.quiet else print_line,
                     generation=GenerationService(args.chat_model))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
