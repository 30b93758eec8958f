import ast
import gc
import os
import re
from pathlib import Path

import pytest
import torch

from tformer.nn import native
from tformer.nn.cache import KVCache
from tformer.nn.layers import DecoderLayer
from tformer.nn.stacks import Decoder

from tests.conftest import spread_layer_norms

REQUIRED = os.environ.get("TFORMER_REQUIRE_NATIVE") == "1"  # .ci/run: the build must work there


def test_native_step_builds_where_required():
    if native.native_ops() is None:
        if REQUIRED:
            pytest.fail("TFORMER_REQUIRE_NATIVE=1 but the native decoding step could not be built")
        pytest.skip("no C++ toolchain here: decoding runs in Python")
    assert hasattr(native.native_ops(), "decoder_step")


needs_native = pytest.mark.skipif(native.native_ops() is None, reason="native decoding step not built here")


def make_decoder(norm_first: bool, activation: str, d_ff: int = 64, d: int = 32, heads: int = 4) -> Decoder:
    torch.manual_seed(0)
    layers = 2
    stack = [DecoderLayer(d, heads, d_ff, dropout=0.1, activation=activation, norm_first=norm_first)
             for _ in range(layers)]
    decoder = Decoder(stack, torch.nn.LayerNorm(d) if norm_first else None).eval()
    spread_layer_norms(decoder)  # LayerNorms start at 1 and 0: make them matter
    return decoder


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return CALL_NATIVE(*args)


CALL_NATIVE = native.decoder_step


def run_steps(decoder, memory, mask, steps, reorder_at=None, capacity=2, dtype=torch.float32):
    """Hidden states of ``steps`` cached steps; ``reorder_at``: step after which rows are permuted (beam search)."""
    torch.manual_seed(1)
    xs = torch.randn(steps, memory.size(0), 1, decoder.layers[0].self_attn.d_model).to(dtype)
    cache = KVCache(len(decoder.layers), capacity=capacity)  # small: the buffers must grow on the way
    outs = []
    with torch.inference_mode():
        for step in range(steps):
            outs.append(decoder(xs[step], memory, mask, cache).hidden)
            if step == reorder_at:
                order = torch.arange(memory.size(0)).flip(0)
                cache.reorder(order)
                memory, mask = memory[order], None if mask is None else mask[order]
    return outs


@needs_native
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("d_ff", [64, 256])  # 256: eight times d_model, a "wide" layer tformer.nn.linear packs
def test_native_steps_equal_the_python_modules_exactly(monkeypatch, norm_first, activation, batch, d_ff):
    decoder = make_decoder(norm_first, activation, d_ff)
    torch.manual_seed(2)
    memory = torch.randn(batch, 7, 32)
    mask = None if batch == 1 else torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 2 + [False] * 5])
    counter = Counter()
    monkeypatch.setattr(native, "decoder_step", counter)
    fast = run_steps(decoder, memory, mask, steps=6, reorder_at=2 if batch > 1 else None)
    assert counter.calls == 6  # every step, the first after fill_caches
    monkeypatch.setattr(native, "applies", lambda *args: "turned off by the test")
    reference = run_steps(decoder, memory, mask, steps=6, reorder_at=2 if batch > 1 else None)
    for step, (a, b) in enumerate(zip(fast, reference)):
        assert torch.equal(a, b), f"step {step}: max difference {(a - b).abs().max().item()}"


@needs_native
def test_native_step_is_not_used_where_it_would_differ_or_cannot_apply():
    decoder = make_decoder(False, "relu")
    memory = torch.randn(2, 5, 32)
    cache = KVCache(2)
    x = torch.randn(2, 1, 32)
    layers = decoder.layers
    with torch.inference_mode():
        assert native.applies(layers, x, cache, None, False) == native.EMPTY_CACHE
        decoder(x, memory, None, cache)
        assert native.applies(layers, x, cache, None, False) == ""  # "": no reason not to
        assert native.applies(layers, x, cache, None, True) == "attention weights requested"
        two_positions = torch.randn(2, 2, 32)
        assert native.applies(layers, two_positions, cache, None, False) == "2 new positions (the step takes one)"
        assert "float32" in native.applies(layers, x.double(), cache, None, False)
        assert native.applies(layers, x, None, None, False) == "no cache"
    assert native.applies(layers, x, cache, None, False) == "gradients are enabled"
    decoder.train()
    with torch.inference_mode():
        assert native.applies(layers, x, cache, None, False) == "training is enabled"


def reduced_precision(decoder: Decoder, precision: str) -> Decoder:
    """The decoder with int8 products (fbgemm's dynamic kind, as ``quantize_int8``) or bfloat16 weights."""
    if precision == "bfloat16":
        return decoder.to(torch.bfloat16)
    from tformer.nn.quantized import quantize_linear_layers

    d = decoder.layers[0].self_attn.d_model
    return quantize_linear_layers(decoder, {layer.cross_attn.in_proj: (d,) for layer in decoder.layers})


@needs_native
@pytest.mark.parametrize("precision", ["int8", "bfloat16"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch", [1, 3])
def test_native_int8_and_bfloat16_steps_equal_the_python_modules_exactly(monkeypatch, precision, norm_first,
                                                                         activation, batch):
    decoder = reduced_precision(make_decoder(norm_first, activation), precision)
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    torch.manual_seed(2)
    memory = torch.randn(batch, 7, 32, dtype=dtype)
    mask = None if batch == 1 else torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 2 + [False] * 5])
    counter = Counter()
    monkeypatch.setattr(native, "decoder_step", counter)
    fast = run_steps(decoder, memory, mask, steps=6, reorder_at=2 if batch > 1 else None, dtype=dtype)
    assert counter.calls == 6
    monkeypatch.setattr(native, "applies", lambda *args: "turned off by the test")
    reference = run_steps(decoder, memory, mask, steps=6, reorder_at=2 if batch > 1 else None, dtype=dtype)
    assert all(a.dtype == dtype for a in fast)
    for step, (a, b) in enumerate(zip(fast, reference)):
        assert torch.equal(a, b), f"step {step}: max difference {(a - b).abs().max().item()}"


@needs_native
def test_native_step_gives_reasons_for_int8_and_bfloat16_layers_it_cannot_take():
    from tformer.nn.quantized import Int8Linear

    d = 32
    int8 = reduced_precision(make_decoder(False, "relu"), "int8")
    int8.layers[1].cross_attn.in_proj = Int8Linear(torch.randn(3 * d, d), torch.randn(3 * d))  # one packed block
    assert native._state(int8.layers) == "an int8 product's rows are not one of its packed blocks"
    mixed = make_decoder(False, "relu").to(torch.bfloat16)
    mixed.layers[0].ffn.linear1.float()
    assert native._state(mixed.layers) == \
        "the layers' weights are ['torch.bfloat16', 'torch.float32'] (the step takes one of float32, bfloat16)"
    bf16, cache = make_decoder(False, "relu").to(torch.bfloat16), KVCache(2)
    x, memory = torch.randn(1, 1, d, dtype=torch.bfloat16), torch.randn(1, 5, d, dtype=torch.bfloat16)
    with torch.inference_mode():
        bf16(x, memory, None, cache)
        assert native.applies(bf16.layers, x, cache, None, False) == ""
        assert native.applies(bf16.layers, x.float(), cache, None, False) == \
            "input is torch.float32, the layers' weights are torch.bfloat16"


@needs_native
@pytest.mark.parametrize("beam", [1, 3])
def test_greedy_and_beam_search_give_the_same_hypotheses_with_and_without_it(monkeypatch, beam):
    from tformer.decoding.beam import beam_search
    from tformer.decoding.greedy import greedy_search
    from tformer.models.config import TransformerConfig
    from tformer.models.seq2seq import Seq2SeqTransformer

    torch.manual_seed(0)
    config = TransformerConfig(src_vocab_size=50, tgt_vocab_size=50, d_model=32, num_heads=4, d_ff=64,
                               num_encoder_layers=2, num_decoder_layers=2, max_len=64)
    model = Seq2SeqTransformer(config).eval()
    src = torch.randint(4, 50, (5, 9))
    src[1, 6:] = config.pad_id
    src[3, 3:] = config.pad_id

    def search():
        if beam == 1:
            return [(h.tokens, h.step_log_probs) for h in greedy_search(model, src)]
        return [[(h.tokens, h.step_log_probs) for h in hyps] for hyps in beam_search(model, src, beam=beam, nbest=2)]

    counter = Counter()
    monkeypatch.setattr(native, "decoder_step", counter)
    fast = search()
    assert counter.calls > 0
    monkeypatch.setattr(native, "applies", lambda *args: "turned off by the test")
    assert fast == search()


@pytest.mark.parametrize("enum, prefix, names, layer", [
    ("LayerTensor", "k", native.LAYER_TENSORS, lambda: make_decoder(False, "relu").layers[0]),
    ("EncoderTensor", "kEnc", native.ENCODER_LAYER_TENSORS, lambda: make_encoder(False, "relu").layers[0]),
])
def test_the_cpp_offsets_mirror_the_python_tensor_order(enum, prefix, names, layer):
    """decoder_step.cpp's LayerTensor names, in order, are native.LAYER_TENSORS (kSelfQkvWeight = self_qkv_weight);
    its EncoderTensor names are ENCODER_LAYER_TENSORS (kEncSelfQkvWeight = self_qkv_weight)."""
    source = native.SOURCE.read_text()
    body = re.search(rf"enum {enum} : int64_t \{{(.*?)\}};", source, re.DOTALL)
    assert body is not None
    found = re.findall(r"\b(k[A-Z]\w*)", re.sub(r"//[^\n]*", "", body.group(1)))
    assert found[-1].endswith("TensorsPerLayer")
    assert found[:-1] == [prefix + "".join(part.capitalize() for part in name.split("_")) for name in names]
    assert len(native.sublayers(layer())) * 6 == len(names)


def test_the_run_state_lives_in_native_and_goes_with_its_cache():
    decoder = make_decoder(False, "relu")
    cache = KVCache(2)
    assert not hasattr(cache, "native_state")
    with torch.inference_mode():
        for _ in range(3):
            decoder(torch.randn(1, 1, 32), torch.randn(1, 5, 32), None, cache)
    assert (cache in native._runs) == (native.native_ops() is not None)  # gathered on the first native step
    runs = len(native._runs)
    del cache
    gc.collect()
    assert len(native._runs) == runs - (native.native_ops() is not None)


def test_native_imports_nothing_from_the_stack_that_calls_it():
    tree = ast.parse(Path(native.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name and name.startswith("tformer.nn.stacks") for name in imported)


@needs_native
def test_a_kept_state_is_reused_across_runs_and_gathered_again_when_the_weights_change(monkeypatch):
    decoder = make_decoder(False, "relu")
    memory = torch.randn(1, 5, 32)
    run_steps(decoder, memory, None, steps=3)
    kept = native._kept[decoder.layers][1]
    run_steps(decoder, memory, None, steps=3)
    assert native._kept[decoder.layers][1] is kept  # a new run (cache), the same weights: not gathered again
    with torch.no_grad():
        decoder.layers[1].ffn.linear2.weight.mul_(2)  # in place: same storage, new version
    fast = run_steps(decoder, memory, None, steps=3)
    assert native._kept[decoder.layers][1] is not kept
    monkeypatch.setattr(native, "applies", lambda *args: "turned off by the test")
    assert all(torch.equal(a, b) for a, b in zip(fast, run_steps(decoder, memory, None, steps=3)))


def make_encoder(norm_first: bool, activation: str, d_ff: int = 64, d: int = 32, heads: int = 4):
    from tformer.nn.layers import EncoderLayer
    from tformer.nn.stacks import Encoder

    torch.manual_seed(0)
    stack = [EncoderLayer(d, heads, d_ff, dropout=0.1, activation=activation, norm_first=norm_first) for _ in range(2)]
    encoder = Encoder(stack, torch.nn.LayerNorm(d) if norm_first else None).eval()
    spread_layer_norms(encoder)  # LayerNorms start at 1 and 0: make them matter
    return encoder


@needs_native
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (3, 6)])  # (batch, src_len), nothing padded
@pytest.mark.parametrize("d_ff", [64, 256])  # 256: eight times d_model, a "wide" layer
def test_the_native_encoder_equals_the_python_modules_exactly(monkeypatch, precision, norm_first, activation, shape,
                                                              d_ff):
    from tformer.devices import cpu_has_bf16

    if precision == "bfloat16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bfloat16 arithmetic")
    from tformer.nn.quantized import quantize_linear_layers

    encoder = make_encoder(norm_first, activation, d_ff)
    if precision == "bfloat16":
        encoder = encoder.to(torch.bfloat16)
    elif precision == "int8":
        encoder = quantize_linear_layers(encoder)
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    torch.manual_seed(3)
    x = torch.randn(*shape, 32).to(dtype)
    calls = []
    run = native.encoder_layers
    monkeypatch.setattr(native, "encoder_layers", lambda *args: calls.append(1) or run(*args))
    with torch.inference_mode():
        fast, _ = encoder(x, torch.ones(shape, dtype=torch.bool))  # an all-True mask counts as no padding
        assert calls == [1]
        monkeypatch.setattr(native, "encoder_state", lambda *args: "turned off by the test")
        reference, _ = encoder(x, None)
    assert fast.dtype == dtype
    assert torch.equal(fast, reference), f"max difference {(fast - reference).abs().max().item()}"


@needs_native
def test_the_native_encoder_says_why_it_does_not_apply():
    encoder = make_encoder(False, "relu")
    x = torch.randn(2, 5, 32)
    with torch.inference_mode():
        assert native.encoder_applies(encoder.layers, x, None, False) == ""
        assert native.encoder_applies(encoder.layers, x, torch.tensor([[True] * 5, [True] * 3 + [False] * 2]),
                                      False) == "padded sources (the C++ encoder takes unpadded batches)"
        assert native.encoder_applies(encoder.layers, x, None, True) == "attention weights requested"
        encoder.train()
        assert native.encoder_applies(encoder.layers, x, None, False) == "training is enabled"
    encoder.eval()
    assert native.encoder_applies(encoder.layers, x, None, False) == "gradients are enabled"
    with torch.inference_mode():
        assert native.encoder_applies(encoder.layers, x.double(), None, False).startswith("input is torch.float64")
