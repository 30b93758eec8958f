"""Search: how a trained model turns a source into an output.

``interface`` (what search may ask of a model), ``search`` (hypotheses, length limits, EOS handling), ``greedy``
and ``beam`` (the two searches), ``batching`` (sort, chunk, pad, append EOS, search) and ``translator`` (a model
with its tokenizer). Traces and attention pictures of a search's result live in ``tformer.inspect``."""
