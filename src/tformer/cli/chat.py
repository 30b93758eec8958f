"""`tformer chat`: talk with a chat model in the terminal, the reply streamed as it is generated."""

from __future__ import annotations

import argparse
import sys

from tformer.cli.generate import add_decoding_options, generation_config

HELP = "Talk with a chat model (default: SmolLM2-135M-Instruct, offline) in the terminal."
COMMANDS_HELP = "Type a message and press Enter. /reset starts a new conversation, /exit (or Ctrl-D) ends."


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help=HELP, description=HELP + " " + COMMANDS_HELP + " Example: tformer chat --once "
                       "\"What is the capital of France?\"")
    p.add_argument("--model", default="smollm2", help="chat model: smollm2, a GGUF file or a Hugging Face folder "
                   "with a chat template (default: %(default)s)")
    p.add_argument("--system", help="a system prompt: how the assistant should behave")
    p.add_argument("--once", metavar="MESSAGE", help="send this one message, print the answer and exit")
    add_decoding_options(p, temperature=0.0)
    p.set_defaults(run=run, max_new_tokens=256)


def run(args: argparse.Namespace) -> int:
    from tformer.decoding.chat import stream_reply
    from tformer.interop.language_models import load_language_model

    config = generation_config(args)
    model, tokenizer = load_language_model(args.model, args.dtype)
    start = [{"role": "system", "content": args.system}] if args.system else []
    messages = list(start)

    def answer(text: str) -> None:
        messages.append({"role": "user", "content": text})
        pieces = []
        for piece in stream_reply(model, tokenizer, messages, config):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        messages.append({"role": "assistant", "content": "".join(pieces).strip()})

    if args.once is not None:
        answer(args.once)
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print(COMMANDS_HELP, file=sys.stderr)
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            return 0
        text = line.strip()
        if text == "/exit":
            return 0
        if text == "/reset":
            messages[:] = start
            print("(new conversation)", file=sys.stderr)
            continue
        if text:
            if interactive:
                sys.stdout.write("assistant> ")
            answer(text)
