"""The fine-tuning steps of the text this project was built from, with tformer's imports: tokenize a batch with
padding and truncation, one AdamW step on the classification loss, then accuracy without gradients.

For real fine-tuning use `tformer finetune` (docs/finetune-sst2.md); this is the few lines a reader types first.
"""

import torch

from tformer import BertForSequenceClassification, Tokenizer

torch.manual_seed(0)
tokenizer = Tokenizer.from_pretrained("minilm")
model = BertForSequenceClassification.from_pretrained("minilm", num_labels=2)  # for binary classification

encoded_inputs = tokenizer(["I love this movie", "This movie is bad"], padding=True, truncation=True,
                           return_tensors='pt')
labels = torch.tensor([1, 0])  # 1 = Positive, 0 = Negative

optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
model.train()
outputs = model(**encoded_inputs, labels=labels)
loss = outputs.loss
loss.backward()
optimizer.step()

model.eval()
with torch.no_grad():
    predictions = model(**encoded_inputs).logits.argmax(dim=-1)
accuracy = (predictions == labels).float().mean()
print(f"Fine-Tuned Model Accuracy: {accuracy}")
