"""--device on translate, classify, embed and serve; Translator/SentenceEncoder/TextClassifier .to(device);
global flags after the subcommand."""

import pytest
import torch

from tformer.cli.main import build_parser, main
from tformer.devices import resolve_device

from tests.decoding.tiny import SENTENCES, tiny_translator


def test_resolve_device_accepts_the_cpu_and_auto_and_refuses_what_is_missing():
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device 'gpu7'"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("command", ["translate", "classify", "embed", "serve"])
def test_every_model_command_takes_device(command, capsys):
    args = build_parser().parse_args([command, "--device", "cpu"])
    assert args.device == "cpu"
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, "--device", "gpu7"])
    assert stop.value.code == 2
    assert "--device" in capsys.readouterr().err


def test_translator_moves_and_says_where_it_is():
    translator = tiny_translator()
    assert translator.to("cpu") is translator and translator.device == torch.device("cpu")
    assert translator.translate(SENTENCES[0], beam=1) == tiny_translator().translate(SENTENCES[0], beam=1)


def test_global_flags_work_after_the_subcommand_too(capsys):
    assert build_parser().parse_args(["translate", "--debug", "Hallo"]).debug is True
    assert build_parser().parse_args(["--debug", "translate", "Hallo"]).debug is True
    assert build_parser().parse_args(["translate", "Hallo"]).debug is False
    with pytest.raises(FileNotFoundError):  # --debug after the subcommand: the traceback, not one line
        main(["translate", "--model", "/nonexistent/model", "--debug", "Hallo"])
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["embed", "--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("tformer ")
