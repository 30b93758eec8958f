"""Do names and places come through a translation? Unseen person names must be copied unchanged; German place
names with a usual English form must take it (München -> Munich), other places must be copied.

Two name checks live here. ``name_copy_rate`` with its defaults (``HELD_OUT_NAMES`` in the 8 ``NAME_FRAMES``) is
the older, narrow check the first name-substitution stage was tuned on. ``unseen_names_check`` is the broader one:
``UNSEEN_NAMES`` (half of them start with a vowel) in 14 everyday ``EVERYDAY_NAME_FRAMES`` written for this check
only. None of ``UNSEEN_NAMES`` occurs in Multi30k train or Tatoeba train, none is one of ``HELD_OUT_NAMES``, and the
training augmentation (``tformer.data.names``/``tformer.data.augment``) never generates one (tests check both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tformer.data.names import HELD_OUT_NAMES, word_pattern

Translate = Callable[[list[str]], list[str]]

# German sentence frames; "{}" is the name. The name must come out unchanged in the English translation.
NAME_FRAMES = ("Ich bin {}.", "Mein Name ist {}.", "Ich heiße {}.", "Das ist {}.", "{} hat einen Hund.",
               "{} wohnt in Berlin.", "Hast du {} gesehen?", "{} und ich sind Freunde.")

# Real given names from many languages, absent from the training corpora; the first 20 start with a vowel.
UNSEEN_NAMES = (
    "Aarav", "Ebele", "Ifeoma", "Ikaika", "Oisin", "Uchenna", "Ayesha", "Akosua", "Emeka", "Inaya",
    "Odalys", "Ekaterina", "Ishaan", "Aditi", "Ikenna", "Amaru", "Itzel", "Elif", "Ozan", "Anouk",
    "Tendai", "Siddharth", "Meera", "Nnamdi", "Wanjiru", "Chiamaka", "Zhiwei", "Haruto", "Bogdan", "Radek",
    "Zuzana", "Lautaro", "Ximena", "Thandiwe", "Kofi", "Dagny", "Solveig", "Teodora", "Marisol", "Lwazi",
)

# Everyday German frames for the broader check (none is one of NAME_FRAMES; the name stands first, in the middle
# and last, as subject, object and after a preposition).
EVERYDAY_NAME_FRAMES = (
    "{} kommt morgen zu uns.", "Gestern habe ich {} im Park getroffen.", "Kannst du bitte {} anrufen?",
    "Das Buch gehört {}.", "{} arbeitet in einem Krankenhaus.", "Meine Schwester heißt {}.", "Wo wohnt {}?",
    "Ich habe {} eine E-Mail geschrieben.", "{} spricht drei Sprachen.", "Hallo, ich heiße {}.",
    "Sag {}, dass ich später komme.", "{} hat heute Geburtstag.", "Wir warten auf {}.", "Ist {} schon zu Hause?",
)

# German place names whose usual English form differs: the translation must use the English form.
TRANSLATED_PLACES = {
    "München": "Munich", "Köln": "Cologne", "Wien": "Vienna", "Nürnberg": "Nuremberg", "Zürich": "Zurich",
    "Genf": "Geneva", "Prag": "Prague", "Rom": "Rome", "Mailand": "Milan", "Venedig": "Venice",
    "Warschau": "Warsaw", "Moskau": "Moscow", "Brüssel": "Brussels", "Lissabon": "Lisbon",
    "Kopenhagen": "Copenhagen", "Athen": "Athens", "Neapel": "Naples", "Florenz": "Florence",
}

# German towns without an English form (written the same in English), absent from the training corpora and from
# the augmentation's own list of copied places; half start with a vowel.
UNSEEN_COPIED_PLACES = ("Wuppertal", "Gelsenkirchen", "Quedlinburg", "Oberstdorf", "Tübingen", "Landshut",
                        "Ilmenau", "Eschwege", "Uelzen", "Aurich", "Ingolstadt", "Osnabrück")

PLACE_FRAMES = ("Ich wohne in {}.", "Morgen fahren wir nach {}.", "Sie kommt aus {}.",
                "{} ist eine schöne Stadt.", "Der Zug nach {} hat Verspätung.", "Ich war letztes Jahr in {}.")


@dataclass
class NameCopyResult:
    copied: int
    total: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, translation) without the name

    @property
    def rate(self) -> float:
        return self.copied / self.total if self.total else 0.0


def name_copy_rate(
    translate: Translate,
    names: Iterable[str] = sorted(HELD_OUT_NAMES),
    frames: Iterable[str] = NAME_FRAMES,
) -> NameCopyResult:
    """Translate every frame filled with every name; count translations that contain the name as written, as a
    whole word ("Piyush's" counts, "Piyushka" does not)."""
    return expected_words_rate(translate, [(frame.format(name), name) for name in names for frame in frames])


def expected_words_rate(translate: Translate, items: list[tuple[str, str]], forbidden: list[str] | None = None
                        ) -> NameCopyResult:
    """(source, expected word) pairs: the share of translations that contain the expected word as a whole word (and,
    where ``forbidden`` gives a word for the item, not that word)."""
    outputs = translate([src for src, _ in items])
    result = NameCopyResult(0, len(items))
    for i, ((src, word), out) in enumerate(zip(items, outputs)):
        bad = forbidden[i] if forbidden else ""
        if word_pattern(word).search(out) and not (bad and word_pattern(bad).search(out)):
            result.copied += 1
        else:
            result.failures.append((src, out))
    return result


@dataclass
class NamesReport:
    """The broader check: unseen person names (split by first letter) and place names (translated or copied)."""

    vowel_initial: NameCopyResult
    consonant_initial: NameCopyResult
    translated_places: NameCopyResult
    copied_places: NameCopyResult

    @property
    def names(self) -> NameCopyResult:
        """All person names together: the figure the target (>= 90%) is about."""
        v, c = self.vowel_initial, self.consonant_initial
        return NameCopyResult(v.copied + c.copied, v.total + c.total, v.failures + c.failures)

    def to_dict(self, max_failures: int = 20) -> dict:
        def part(r: NameCopyResult) -> dict:
            return {"right": r.copied, "total": r.total, "rate": round(r.rate, 3),
                    "failures": r.failures[:max_failures]}

        return {"names": part(self.names), "vowel_initial_names": part(self.vowel_initial),
                "consonant_initial_names": part(self.consonant_initial),
                "translated_places": part(self.translated_places), "copied_places": part(self.copied_places)}


def unseen_names_check(
    translate: Translate,
    names: Iterable[str] = UNSEEN_NAMES,
    frames: Iterable[str] = EVERYDAY_NAME_FRAMES,
    translated_places: dict[str, str] = TRANSLATED_PLACES,
    copied_places: Iterable[str] = UNSEEN_COPIED_PLACES,
    place_frames: Iterable[str] = PLACE_FRAMES,
) -> NamesReport:
    """Names copied (whole word, as written), translated places in their English form, other places copied.

    A translated place counts as right only when its English form is there and the German one is gone
    ("Munich", not "München" or "Munich (München)").
    """
    frames, place_frames = list(frames), list(place_frames)
    names = list(names)
    vowels = [n for n in names if n[0] in "AEIOUÄÖÜ"]
    consonants = [n for n in names if n[0] not in "AEIOUÄÖÜ"]
    places = [(f.format(de), en, de) for de, en in translated_places.items() for f in place_frames]
    translated = expected_words_rate(translate, [(src, en) for src, en, _ in places], [de for _, _, de in places])
    copied = name_copy_rate(translate, list(copied_places), place_frames)
    return NamesReport(name_copy_rate(translate, vowels, frames), name_copy_rate(translate, consonants, frames),
                       translated, copied)
