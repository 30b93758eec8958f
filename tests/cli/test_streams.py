"""The CLI's input and output streams: a byte-order mark at the start of the input is not part of the first
sentence, and a reader that goes away early (``| head -1``) ends the command quietly with status 0."""

import codecs
import fcntl
import subprocess
import sys

from tformer import Translator
from tformer.data.corpus import decode_lines

from tests.cli.conftest import run_cli

SENTENCES = ["Hallo Welt", "Ein Hund läuft im Park."]
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux


def test_a_byte_order_mark_at_the_start_is_dropped():
    raw = codecs.BOM_UTF8 + "\n".join(SENTENCES).encode()
    assert decode_lines(raw, "<test>") == SENTENCES
    assert decode_lines(raw.replace(b"\n", b"\r\n"), "<test>") == SENTENCES
    inner = b"a\n" + codecs.BOM_UTF8 + b"b"  # only the start of the input carries a byte-order mark
    assert decode_lines(inner, "<test>") == ["a", "\ufeffb"]


def test_translate_with_a_byte_order_mark_translates_the_same(tiny_model_dir, tmp_path):
    expected = Translator.from_pretrained(tiny_model_dir).translate(SENTENCES, 1)
    stdin = codecs.BOM_UTF8 + "\n".join(SENTENCES).encode() + b"\n"
    r = run_cli("translate", "--model", str(tiny_model_dir), "--beam", "1", stdin=stdin)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == expected
    r = run_cli("translate", "--model", str(tiny_model_dir), "--beam", "1", "\ufeff" + SENTENCES[0])
    assert r.stdout.decode().splitlines() == expected[:1]


def test_a_closed_stdout_pipe_ends_quietly_with_status_0(tiny_model_dir):
    lines = "\n".join(f"Ein Hund läuft {i} Mal im Park." for i in range(12)).encode()
    proc = subprocess.Popen([sys.executable, "-m", "tformer.cli.main", "translate", "--model", str(tiny_model_dir),
                             "--beam", "1", "--json"],  # a trace per line: some kilobytes each
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 4096)  # the output cannot all wait in the pipe
    proc.stdin.write(lines)
    proc.stdin.close()
    first = proc.stdout.readline()  # what `head -1` does: read one line, then go away
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(120) == 0, stderr.decode()
    assert first.startswith(b"{") and stderr == b""
    assert len(first) * 12 > 3 * 8192  # far more than the pipe and Python's own buffer hold


def test_text_arguments_lose_a_leading_byte_order_mark_in_every_command_that_takes_them(tmp_path):
    from tformer.cli.io import input_texts

    assert input_texts(["\ufeffHallo Welt", "zwei"], None) == ["Hallo Welt", "zwei"]
    file = tmp_path / "in.txt"
    file.write_bytes("\ufeffeins\nzwei\n".encode())
    assert input_texts([], str(file)) == ["eins", "zwei"]
