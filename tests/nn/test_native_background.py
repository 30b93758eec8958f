"""A first decoding without the native step built starts the build in the background, says so once, and decodes
in Python meanwhile (so a fresh install's first `tformer translate` takes seconds, not half a minute)."""

import pytest

from tformer.nn import kernels, native

from tests.decoding.tiny import SENTENCES, tiny_translator


@pytest.fixture
def fresh_install(monkeypatch):
    started = []
    monkeypatch.setenv(native.ENV, "1")
    monkeypatch.setattr(native, "_background", {})
    monkeypatch.setattr(native, "_already_built", lambda cpp_extension: False)
    monkeypatch.setattr(native.subprocess, "Popen", lambda args, **kwargs: started.append(args))
    native.native_ops.cache_clear()
    monkeypatch.setattr(kernels, "_ops", None)  # nothing loaded: the modules take PyTorch's kernels
    yield started
    native.native_ops.cache_clear()  # the next caller loads the real build again


def test_the_first_decoding_starts_a_background_build_once_and_decodes_in_python(fresh_install, capsys, monkeypatch):
    translator = tiny_translator(eos_bias=0.0)
    first = translator.translate(SENTENCES, beam=1)
    translator.translate(SENTENCES, beam=2)
    assert len(fresh_install) == 1 and "native_ops()" in fresh_install[0][-1]
    assert capsys.readouterr().err.count("preparing the native decoding step in the background") == 1
    assert native.native_ops.cache_info().currsize == 0  # nothing was built or loaded in the foreground
    monkeypatch.setenv(native.ENV, "0")  # the plain Python decoding gives the same translations
    assert first == tiny_translator(eos_bias=0.0).translate(SENTENCES, beam=1)


def test_a_built_step_is_loaded_without_a_background_build(monkeypatch):
    monkeypatch.setenv(native.ENV, "1")
    monkeypatch.setattr(native, "_background", {})
    if native.native_ops() is None:
        pytest.skip("no C++ toolchain here")
    monkeypatch.setattr(native.subprocess, "Popen", lambda *a, **k: pytest.fail("no build expected"))
    assert native.available_ops() is native.native_ops()
