"""Search: how a trained model turns a source or a prompt into an output.

``interface`` (what search may ask of a model), ``search`` (hypotheses, length limits, EOS handling), ``greedy``
and ``beam`` (the two searches of an encoder-decoder model), ``batching`` (sort, chunk, pad, append EOS, search),
``translator`` (a translation model with its tokenizer) and ``generate`` (greedy or sampled continuations of a
decoder-only model's prompts). Traces and attention of a search's result live in ``tformer.inspect``."""
