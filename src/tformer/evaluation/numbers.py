"""Do numbers come through a German -> English translation? Digits, prices, decimals, dates, times, number words.

The German sentence alone says what the English must contain (``expected_numbers``), by these rules, applied in
this order (each piece of the German text is used by one rule only):

- a time ``15 Uhr``, ``17.45 Uhr``, ``8:30 Uhr``: the 24-hour form ("15:00", "17:45") or the 12-hour form with
  a.m./p.m. ("3 p.m.", "3pm", "3:00 PM", "5:45 p.m."); for hours up to 12 also "8 o'clock", "eight o'clock",
  "8:00" and a bare "8" (German "um 8 Uhr" is the morning, so "8 p.m." is wrong); "12 Uhr" may be "noon",
  "0 Uhr" "midnight";
- a date ``12. März``: the day as "12" or "12th" and the month's English name ("March"); a year after it is a
  number as below;
- a decimal ``3,5`` / ``3,50``: the English decimal point, same digits ("3.5", "3.50"); "3,5" or "35" is wrong;
- a thousands group ``1.500``: "1,500" or "1500";
- any other digit sequence: copied as written ("25", "0171");
- a number word (``sieben``, ``zwölf``, ``zwanzig``...): the English word ("seven") or its digits ("7").

A translation keeps every number right when each expectation is found (each match used once) and no digit is left
over in the English that no expectation accounts for (an invented or mangled number), nor an "a.m."/"p.m." after
a matched number that is not part of the match ("um 8 Uhr" -> "at 8 p.m." is wrong). ``NUMBER_SENTENCES`` holds
the check's German sentences with reference translations written for this project; each reference passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MONTHS = {"Januar": "January", "Februar": "February", "März": "March", "April": "April", "Mai": "May",
          "Juni": "June", "Juli": "July", "August": "August", "September": "September", "Oktober": "October",
          "November": "November", "Dezember": "December"}

NUMBER_WORDS = {"null": 0, "eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7,
                "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwanzig": 20, "dreißig": 30,
                "vierzig": 40, "fünfzig": 50, "hundert": 100, "tausend": 1000}
ENGLISH_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                 9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 20: "twenty", 30: "thirty", 40: "forty",
                 50: "fifty", 100: "hundred", 1000: "thousand"}

TIME = re.compile(r"\b(\d{1,2})(?:[.:](\d{2}))? Uhr\b")
DATE = re.compile(rf"\b(\d{{1,2}})\. ({'|'.join(MONTHS)})\b")
DECIMAL = re.compile(r"(?<![\d.,])\d+,\d+(?![\d,])")
THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:\.\d{3})+(?![\d]|[.,]\d)")
INTEGER = re.compile(r"\d+")
WRONG_HALF = re.compile(r"#\s*(?:[ap]\.m\.|[ap]m\b)", re.IGNORECASE)  # a.m./p.m. after a used-up number
WORD = re.compile(rf"\b({'|'.join(NUMBER_WORDS)})\b", re.IGNORECASE)


@dataclass(frozen=True)
class NumberExpectation:
    """One number of the German sentence and the English renderings accepted for it."""

    german: str
    forms: tuple[str, ...]


def time_forms(hour: int, minute: int) -> tuple[str, ...]:
    """English renderings of the German clock time ``hour``:``minute`` ("15 Uhr" -> "3 p.m.", "15:00", ...)."""
    h12 = hour % 12 or 12
    half = "a.m." if hour < 12 else "p.m."
    clock = f"{h12}:{minute:02d}"
    forms = [f"{hour}:{minute:02d}", f"{hour:02d}:{minute:02d}"]
    for suffix in (half, half.replace(".", "")):
        forms += [f"{clock} {suffix}", f"{clock}{suffix}"]
        if minute == 0:
            forms += [f"{h12} {suffix}", f"{h12}{suffix}"]
    if 0 < hour <= 12 and minute == 0:
        forms += [f"{hour} o'clock", f"{ENGLISH_WORDS[hour]} o'clock", str(hour)]
    if minute == 0 and hour in (0, 12):
        forms += ["midnight"] if hour == 0 else ["noon", "midday"]
    return tuple(dict.fromkeys(forms))


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def expected_numbers(german: str) -> list[NumberExpectation]:
    """What the English translation of ``german`` must contain, by the rules in the module docstring."""
    found: list[tuple[int, NumberExpectation]] = []  # (position in the German, expectation)
    rest = german

    def take(pattern: re.Pattern[str], forms: Callable[[re.Match[str]], list[tuple[str, ...]]]) -> None:
        nonlocal rest
        for m in pattern.finditer(rest):
            found.extend((m.start(), NumberExpectation(m.group(0), f)) for f in forms(m))
        rest = pattern.sub(lambda m: " " * len(m.group(0)), rest)  # used: no later rule sees it

    take(TIME, lambda m: [time_forms(int(m.group(1)), int(m.group(2) or 0))])
    take(DATE, lambda m: [(m.group(1), ordinal(int(m.group(1)))), (MONTHS[m.group(2)],)])
    take(DECIMAL, lambda m: [(m.group(0).replace(",", "."),)])
    take(THOUSANDS, lambda m: [(m.group(0).replace(".", ","), m.group(0).replace(".", ""))])
    take(INTEGER, lambda m: [(m.group(0),)])
    take(WORD, lambda m: [(ENGLISH_WORDS[NUMBER_WORDS[m.group(1).lower()]], str(NUMBER_WORDS[m.group(1).lower()]))])
    return [e for _, e in sorted(found, key=lambda pair: pair[0])]


def form_pattern(form: str) -> re.Pattern[str]:
    """``form`` standing alone: digits not glued to more digits ("25" in "€25" and "25th", not in "125" or "2.5");
    words as whole words; lower-case forms in any case ("3 PM", "Seven"), capitalised ones as written ("May", not
    the verb "may")."""
    left = r"(?<!\d)(?<!\d[.,:])" if form[0].isdigit() else r"(?<!\w)"
    right = r"(?!\d)(?![.,:]\d)" if form[-1].isdigit() else r"(?!\w)" if form[-1].isalnum() else ""
    return re.compile(left + re.escape(form) + right, 0 if form[0].isupper() else re.IGNORECASE)


def number_problems(german: str, english: str) -> list[str]:
    """Why ``english`` does not keep the numbers of ``german`` right; empty when it does."""
    problems = []
    rest = english
    for expectation in expected_numbers(german):
        for form in sorted(expectation.forms, key=len, reverse=True):  # "3:00 p.m." before "3:00"
            m = form_pattern(form).search(rest)
            if m:
                rest = rest[: m.start()] + "#" * len(m.group(0)) + rest[m.end():]  # used up
                break
        else:
            problems.append(f"{expectation.german!r} missing (expected one of {', '.join(expectation.forms)})")
    problems += [f"unexpected number {m.group(0)!r}" for m in re.finditer(r"\d+(?:[.,:]\d+)*", rest)]
    if WRONG_HALF.search(rest):  # "um 8 Uhr" -> "at 8 p.m.": the bare "8" matched, its "p.m." did not
        problems.append("a.m./p.m. on the wrong half of the day")
    return problems


@dataclass
class NumbersResult:
    right: int
    total: int
    failures: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (German, English, problems)

    @property
    def rate(self) -> float:
        return self.right / self.total if self.total else 0.0

    def to_dict(self, max_failures: int = 20) -> dict:
        return {"right": self.right, "total": self.total, "rate": round(self.rate, 3),
                "failures": [list(f) for f in self.failures[:max_failures]]}


def numbers_check(translate: Callable[[list[str]], list[str]], sources: Iterable[str] | None = None) -> NumbersResult:
    """The share of sentences whose translation keeps every number right (``NUMBER_SENTENCES`` by default)."""
    sources = [de for de, _ in NUMBER_SENTENCES] if sources is None else list(sources)
    outputs = translate(sources)
    result = NumbersResult(0, len(sources))
    for de, en in zip(sources, outputs):
        problems = number_problems(de, en)
        if problems:
            result.failures.append((de, en, problems))
        else:
            result.right += 1
    return result


# German sentences with numbers and their reference translations, written for this project.
NUMBER_SENTENCES = (
    ("Ich habe 25 Euro dabei.", "I have 25 euros on me."),
    ("Das Ticket kostet 12 Euro.", "The ticket costs 12 euros."),
    ("Ein Kaffee kostet 3,50 Euro.", "A coffee costs 3.50 euros."),
    ("Die Pizza kostet 8,90 Euro.", "The pizza costs 8.90 euros."),
    ("Das Paket wiegt 3,5 Kilo.", "The parcel weighs 3.5 kilos."),
    ("Heute sind es 21,5 Grad.", "It is 21.5 degrees today."),
    ("Der Termin ist am 12. März um 15 Uhr.", "The appointment is on March 12 at 3 p.m."),
    ("Wir treffen uns um 8 Uhr.", "We are meeting at 8 o'clock."),
    ("Der Zug fährt um 17.45 Uhr ab.", "The train leaves at 5:45 p.m."),
    ("Das Geschäft schließt um 20 Uhr.", "The shop closes at 8 p.m."),
    ("Mein Geburtstag ist am 3. Mai.", "My birthday is on May 3."),
    ("Sie ist am 24. Dezember 1990 geboren.", "She was born on December 24, 1990."),
    ("Das Konzert beginnt am 1. Juni um 19 Uhr.", "The concert starts on June 1 at 7 p.m."),
    ("Meine Tochter ist sieben Jahre alt.", "My daughter is seven years old."),
    ("Ich habe zwei Brüder und drei Schwestern.", "I have two brothers and three sisters."),
    ("Wir brauchen vier Stühle.", "We need four chairs."),
    ("Er hat zehn Minuten gewartet.", "He waited for ten minutes."),
    ("In der Klasse sind 28 Schüler.", "There are 28 pupils in the class."),
    ("Das Haus hat 120 Quadratmeter.", "The house has 120 square metres."),
    ("Die Stadt hat 1.500 Einwohner.", "The town has 1,500 inhabitants."),
    ("Er verdient 2.000 Euro im Monat.", "He earns 2,000 euros a month."),
    ("Der Flug dauert 11 Stunden.", "The flight takes 11 hours."),
    ("Ich habe 3 Katzen.", "I have 3 cats."),
    ("Der Bus kommt in 15 Minuten.", "The bus comes in 15 minutes."),
    ("Mein Sohn ist 12 Jahre alt.", "My son is 12 years old."),
    ("Ich habe 2 Kilo Äpfel gekauft.", "I bought 2 kilos of apples."),
    ("Das Zimmer kostet 89 Euro pro Nacht.", "The room costs 89 euros a night."),
    ("Wir haben 100 Gäste eingeladen.", "We have invited 100 guests."),
    ("Die Reise dauert acht Tage.", "The trip lasts eight days."),
    ("Sie hat fünf Kinder.", "She has five children."),
    ("Er ist 1,85 Meter groß.", "He is 1.85 metres tall."),
    ("Der Laden öffnet um 9 Uhr.", "The shop opens at 9 a.m."),
    ("Das Spiel beginnt um 20.30 Uhr.", "The game starts at 8:30 p.m."),
    ("Am 31. Oktober feiern wir eine Party.", "On October 31 we are having a party."),
    ("Ich brauche sechs Eier.", "I need six eggs."),
    ("Unsere Wohnung hat drei Zimmer.", "Our flat has three rooms."),
    ("Der Zug hat 40 Minuten Verspätung.", "The train is 40 minutes late."),
    ("Ich bin 1985 in Leipzig geboren.", "I was born in Leipzig in 1985."),
    ("Im Jahr 2024 waren wir in Spanien.", "In 2024 we were in Spain."),
    ("Die Miete beträgt 750 Euro.", "The rent is 750 euros."),
    ("Es ist jetzt 14 Uhr.", "It is 2 p.m. now."),
    ("Ich trinke jeden Tag zwei Tassen Kaffee.", "I drink two cups of coffee every day."),
    ("Das Baby ist neun Monate alt.", "The baby is nine months old."),
    ("Der Marathon ist 42,2 Kilometer lang.", "The marathon is 42.2 kilometres long."),
    ("Meine Nummer ist 0171 2345678.", "My number is 0171 2345678."),
    ("Wir bleiben elf Tage in Italien.", "We are staying in Italy for eleven days."),
)
