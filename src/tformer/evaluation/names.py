"""How often a translation model copies a name it never saw in training: a check on name substitution."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tformer.data.names import HELD_OUT_NAMES, word_pattern

# German sentence frames; "{}" is the name. The name must come out unchanged in the English translation.
NAME_FRAMES = ("Ich bin {}.", "Mein Name ist {}.", "Ich heiße {}.", "Das ist {}.", "{} hat einen Hund.",
               "{} wohnt in Berlin.", "Hast du {} gesehen?", "{} und ich sind Freunde.")


@dataclass
class NameCopyResult:
    copied: int
    total: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, translation) without the name

    @property
    def rate(self) -> float:
        return self.copied / self.total if self.total else 0.0


def name_copy_rate(
    translate: Callable[[list[str]], list[str]],
    names: Iterable[str] = sorted(HELD_OUT_NAMES),
    frames: Iterable[str] = NAME_FRAMES,
) -> NameCopyResult:
    """Translate every frame filled with every name; count translations that contain the name as written, as a
    whole word ("Piyush's" counts, "Piyushka" does not)."""
    sources = [(frame.format(name), name) for name in names for frame in frames]
    outputs = translate([s for s, _ in sources])
    result = NameCopyResult(0, len(sources))
    for (src, name), out in zip(sources, outputs):
        if word_pattern(name).search(out):
            result.copied += 1
        else:
            result.failures.append((src, out))
    return result
