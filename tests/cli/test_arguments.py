"""Every numeric option is checked by argparse while parsing: a value out of range stops the command at once (exit
2) with a message that names the flag and the value."""

import argparse

import pytest

from tformer.cli.main import build_parser, main
from tformer.cli.numbers import NUMBER_TYPES, float_in, int_in


def subcommand_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, subparser in sub.choices.items():
        for action in subparser._actions:
            yield name, action


def test_every_numeric_option_has_a_checked_type():
    unchecked = [f"{name} {'/'.join(a.option_strings)}" for name, a in subcommand_options() if a.type in (int, float)]
    assert not unchecked, f"give these a type from tformer.cli.numbers: {unchecked}"
    checked = [a for _, a in subcommand_options() if a.type in NUMBER_TYPES]
    assert len(checked) > 30


@pytest.mark.parametrize("argv, flag, value", [
    (["translate", "--batch-size", "-5", "Hallo"], "--batch-size", "-5"),
    (["translate", "--batch-size", "0", "Hallo"], "--batch-size", "0"),
    (["translate", "--beam", "zwei", "Hallo"], "--beam", "zwei"),
    (["translate", "--length-penalty", "nan", "Hallo"], "--length-penalty", "nan"),
    (["evaluate", "--limit", "-1"], "--limit", "-1"),
    (["serve", "--port", "70000"], "--port", "70000"),
    (["serve", "--request-timeout", "0"], "--request-timeout", "0"),
    (["finetune", "--warmup-ratio", "1.5"], "--warmup-ratio", "1.5"),
    (["finetune", "--lr", "-0.001"], "--lr", "-0.001"),
    (["train", "--max-steps", "0"], "--max-steps", "0"),
    (["attention", "--head", "0", "Hallo"], "--head", "0"),
])
def test_a_number_out_of_range_stops_before_anything_runs(argv, flag, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2
    assert f"tformer {argv[0]}: error: argument {flag}: expected " in err and f"got '{value}'" in err, err


@pytest.mark.parametrize("parse, good, bad", [
    (int_in(1), ["1", "32", "+7"], ["0", "-5", "1.5", "", "inf"]),
    (int_in(0, 65535), ["0", "65535"], ["-1", "65536"]),
    (float_in(0.0, low_open=True), ["1e-4", "3"], ["0", "-0.1", "nan", "inf", "x"]),
    (float_in(0.0, 1.0), ["0", "0.5", "1"], ["-0.01", "1.01", "-inf"]),
])
def test_number_types_accept_their_range_and_refuse_the_rest(parse, good, bad):
    for text in good:
        assert parse(text) == float(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected .*, got"):
            parse(text)
