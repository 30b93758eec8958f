"""The character tokenizer: a round trip on any text of its characters, <unk> for the others, and a tokenizer.json
that the generic causal-model loader reads."""

from tformer.interop.hf_causal import load_chat_tokenizer
from tformer.text.chars import CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def test_round_trip_one_id_per_character():
    tok = CharTokenizer.from_text(TEXT)
    ids = tok.encode(TEXT)
    assert len(ids) == len(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.vocab_size == len(set(TEXT)) + 1  # + <unk>


def test_unseen_characters_are_unk():
    tok = CharTokenizer.from_text(TEXT)
    ids = tok.encode("Speak, Zé.")
    assert ids.count(tok.unk_id) == 2  # 'Z' and 'é' are not in TEXT
    assert tok.decode([i for i in ids if i != tok.unk_id]) == "Speak, ."


def test_saved_file_loads_through_the_generic_loader(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    tok.save_pretrained(tmp_path)
    again = CharTokenizer.from_pretrained(tmp_path)
    generic = load_chat_tokenizer(tmp_path)
    sample = "hear me speak.\n  All:"
    assert again.encode(sample) == tok.encode(sample) == generic.encode(sample)
    assert generic.decode(tok.encode(sample)) == sample
