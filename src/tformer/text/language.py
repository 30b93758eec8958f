"""A rough guess whether a text is German or English, for choosing a model when the user did not say which."""

from __future__ import annotations

import re

GERMAN_WORDS = frozenset(
    "der die das den dem des ein eine einer einen einem und ist sind nicht mit auf für von zu im ich du er sie wir "
    "ihr es auch wie aber oder noch nach bei aus wird wurde hat haben sein mein dein kein keine zwei drei vier "
    "mann frau kind hund katze straße spielen fährt guten tag danke bitte".split())
ENGLISH_WORDS = frozenset(
    "the a an and is are was were not with on for of to in i you he she we they it also how but or still after at "
    "from will has have his her my your no two three four man woman child dog cat street play good day thanks "
    "please because that this".split())
WORD = re.compile(r"[^\W\d_]+")


def looks_german(text: str) -> bool:
    """True when the text has German letters (ä ö ü ß) or more common German than English words."""
    if re.search(r"[äöüßÄÖÜ]", text):
        return True
    words = [w.lower() for w in WORD.findall(text)]
    return sum(w in GERMAN_WORDS for w in words) > sum(w in ENGLISH_WORDS for w in words)
