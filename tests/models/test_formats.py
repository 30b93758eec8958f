"""models/formats.py: the registry through which interop/ formats serve models' from_pretrained/save_pretrained."""

import pytest

from tformer.models import formats
from tformer.models.formats import CheckpointFormat, checkpoint_formats, register_checkpoint_format


@pytest.fixture
def family(monkeypatch):
    monkeypatch.setattr(formats, "_formats", {})
    return "toy"


def test_the_first_format_that_recognises_the_source_loads_it(family):
    saved = []
    register_checkpoint_format(family, CheckpointFormat("gguf", lambda cls, s, **o: ("gguf", s, o),
                                                        recognises=lambda s: str(s).endswith(".gguf")))
    register_checkpoint_format(family, CheckpointFormat("folder", lambda cls, s, **o: ("folder", s, o),
                                                        save=lambda m, f: saved.append((m, f))))
    assert formats.load_checkpoint(family, object, "m.gguf", strict=False) == ("gguf", "m.gguf", {"strict": False})
    assert formats.load_checkpoint(family, object, "dir")[0] == "folder"
    formats.save_checkpoint(family, "model", "out")  # the gguf format cannot write: the folder format does
    assert saved == [("model", "out")]


def test_registering_a_name_again_replaces_it_in_place(family):
    register_checkpoint_format(family, CheckpointFormat("a", lambda cls, s: 1))
    register_checkpoint_format(family, CheckpointFormat("b", lambda cls, s: 2))
    register_checkpoint_format(family, CheckpointFormat("a", lambda cls, s: 3))
    assert [f.name for f in checkpoint_formats(family)] == ["b", "a"]


def test_no_registered_or_recognising_format_is_a_clear_error(family):
    with pytest.raises(RuntimeError, match="no checkpoint format is registered for 'toy'"):
        formats.load_checkpoint(family, object, "x")
    register_checkpoint_format(family, CheckpointFormat("gguf", lambda cls, s: 0, recognises=lambda s: False))
    with pytest.raises(ValueError, match=r"x: not in a format that object reads \(gguf\)"):
        formats.load_checkpoint(family, object, "x")
    with pytest.raises(RuntimeError, match="can write"):
        formats.save_checkpoint(family, object(), "out")


def test_bert_is_served_by_the_hugging_face_folder_format():
    assert [f.name for f in checkpoint_formats("bert")] == ["Hugging Face BERT folder"]
