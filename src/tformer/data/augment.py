"""Extra training pairs for everyday German: places (translated or copied) and numbers (digits, prices, decimals,
dates, clock times, number words).

Both follow the idea of ``tformer.data.names``: change a pair on both sides at once, so that the only way to get the
English right is the rule we want learnt. Places: Tatoeba pairs that mention a city written alike in both languages
("Boston") get another place instead, either one with an English form of its own ("München" / "Munich") or a German
town that English copies ("Bielefeld", or a made-up "Zhavirburg"). Numbers: pairs from short bilingual templates
written for this project, with random values rendered the way each language writes them ("3,5" / "3.5",
"15 Uhr" / "3 p.m." or "15:00", "12. März" / "March 12").

The evaluation sets in ``tformer.evaluation`` are kept apart: generated names and towns avoid the names in
``avoid`` (the training set-up passes the evaluation's lists), the copied towns below are not the evaluation's,
and no template is one of the numbers check's sentences. Places with an English form are a closed list a model
has to learn one by one, so those are necessarily the same in training and evaluation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection

from tformer.data.names import pseudo_name, shared_name_pairs, word_pattern

# German city names and their usual English form (the evaluation's list is a subset).
ENGLISH_PLACE_NAMES = {
    "München": "Munich", "Köln": "Cologne", "Wien": "Vienna", "Nürnberg": "Nuremberg", "Zürich": "Zurich",
    "Genf": "Geneva", "Prag": "Prague", "Rom": "Rome", "Mailand": "Milan", "Venedig": "Venice",
    "Warschau": "Warsaw", "Moskau": "Moscow", "Brüssel": "Brussels", "Lissabon": "Lisbon",
    "Kopenhagen": "Copenhagen", "Athen": "Athens", "Neapel": "Naples", "Florenz": "Florence",
    "Hannover": "Hanover", "Braunschweig": "Brunswick", "Den Haag": "The Hague", "Bukarest": "Bucharest",
    "Belgrad": "Belgrade", "Kairo": "Cairo", "Peking": "Beijing", "Genua": "Genoa", "Sevilla": "Seville",
    "Krakau": "Krakow", "Antwerpen": "Antwerp", "Luzern": "Lucerne",
}

# German towns that English writes the same way (none is in the evaluation's list of unseen copied places).
COPIED_TOWNS = ("Bielefeld", "Paderborn", "Kassel", "Rostock", "Potsdam", "Jena", "Weimar", "Marburg", "Lübeck",
                "Kiel", "Oldenburg", "Wolfsburg", "Regensburg", "Passau", "Bamberg", "Würzburg", "Konstanz",
                "Offenburg", "Aachen", "Ansbach", "Ahlen", "Eisenach", "Erlangen", "Amberg", "Itzehoe",
                "Ettlingen", "Detmold", "Siegen", "Hameln", "Celle", "Goslar", "Husum", "Memmingen", "Lindau",
                "Plauen", "Zwickau", "Gera", "Cottbus", "Schwerin", "Wismar", "Stralsund", "Flensburg", "Olpe",
                "Alsfeld", "Apolda", "Achern", "Eutin", "Idstein", "Unna", "Emmerich", "Iserlohn", "Aalen")
TOWN_ENDINGS = ("burg", "dorf", "hausen", "stadt", "feld", "heim", "bach", "au", "ingen", "berg")

# Cities written alike in German and English sentences of Tatoeba: the carriers replaced by other places.
CARRIER_CITIES = ("Boston", "London", "Paris", "Chicago", "Berlin", "Sydney")


def made_up_town(rng: random.Random, vowel_share: float, avoid: Collection[str]) -> str:
    """A German-looking town name that exists nowhere ("Zhavirburg"), never one of ``avoid``."""
    while True:
        town = pseudo_name(rng, vowel_share) + rng.choice(TOWN_ENDINGS)
        if town not in avoid:
            return town


def substitute_places(
    src: list[str], tgt: list[str], count: int, seed: int, vowel_share: float = 0.3,
    avoid: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """``count`` pairs: seeded picks of pairs sharing a carrier city, the city replaced on both sides by a place
    with an English form (half the time), a listed German town or a made-up one (copied on both sides)."""
    candidates = shared_name_pairs(src, tgt, CARRIER_CITIES) if count > 0 else []
    if not candidates:
        return [], []
    rng = random.Random(seed)
    translated = sorted(ENGLISH_PLACE_NAMES.items())
    new_src, new_tgt = [], []
    for _ in range(count):
        i, city = rng.choice(candidates)
        roll = rng.random()
        if roll < 0.5:
            de, en = rng.choice(translated)
        else:
            de = en = rng.choice(COPIED_TOWNS) if roll < 0.75 else made_up_town(rng, vowel_share, avoid)
        new_src.append(word_pattern(city).sub(de, src[i]))
        new_tgt.append(word_pattern(city).sub(en, tgt[i]))
    return new_src, new_tgt


MONTHS = (("Januar", "January"), ("Februar", "February"), ("März", "March"), ("April", "April"), ("Mai", "May"),
          ("Juni", "June"), ("Juli", "July"), ("August", "August"), ("September", "September"),
          ("Oktober", "October"), ("November", "November"), ("Dezember", "December"))
NUMBER_WORDS = (("zwei", "two"), ("drei", "three"), ("vier", "four"), ("fünf", "five"), ("sechs", "six"),
                ("sieben", "seven"), ("acht", "eight"), ("neun", "nine"), ("zehn", "ten"), ("elf", "eleven"),
                ("zwölf", "twelve"), ("zwanzig", "twenty"))
THINGS = (("Der Rucksack", "The backpack"), ("Die Lampe", "The lamp"), ("Das Fahrrad", "The bike"),
          ("Die Jacke", "The jacket"), ("Das Essen", "The meal"), ("Die Uhr", "The watch"),
          ("Der Eintritt", "Admission"), ("Die Fahrt", "The ride"), ("Das Kleid", "The dress"),
          ("Der Kuchen", "The cake"), ("Die Tasche", "The bag"), ("Das Handy", "The phone"))
PLURALS = (("Bücher", "books"), ("Hunde", "dogs"), ("Freunde", "friends"), ("Äpfel", "apples"),
           ("Fragen", "questions"), ("Flaschen", "bottles"), ("Tage", "days"), ("Wochen", "weeks"),
           ("Stunden", "hours"), ("Kinder", "children"), ("Gläser", "glasses"), ("Briefe", "letters"))
UNITS = (("Kilometer", "kilometres", "kilometers"), ("Liter", "litres", "liters"), ("Meter", "metres", "meters"),
         ("Kilo", "kilos", "kilos"), ("Prozent", "percent", "per cent"), ("Grad", "degrees", "degrees"))


def random_integer(rng: random.Random) -> int:
    """Small numbers often, long ones sometimes: 1-4 digits, equally likely lengths."""
    digits = rng.choice((1, 2, 3, 4))
    return rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits)


def random_decimal(rng: random.Random) -> tuple[str, str]:
    """A decimal in German and English writing: ("3,5", "3.5"), ("12,75", "12.75")."""
    whole, places = rng.randrange(0, 100), rng.choice((1, 2))
    fraction = f"{rng.randrange(1, 10**places):0{places}d}"
    return f"{whole},{fraction}", f"{whole}.{fraction}"


def clock_time(rng: random.Random) -> tuple[str, str]:
    """A German "Uhr" time and an accepted English rendering ("15 Uhr" -> "3 p.m." or "15:00")."""
    hour, minute = rng.randrange(0, 24), rng.choice((0, 0, 0, 15, 30, 45, rng.randrange(1, 60)))
    german = f"{hour} Uhr" if minute == 0 else f"{hour}.{minute:02d} Uhr"
    if rng.random() < 0.5:
        return german, f"{hour}:{minute:02d}"
    h12, half = hour % 12 or 12, "a.m." if hour < 12 else "p.m."
    return german, (f"{h12} {half}" if minute == 0 else f"{h12}:{minute:02d} {half}")


def date(rng: random.Random) -> tuple[str, str]:
    """A German date and its English form ("12. März" -> "March 12" or "12 March")."""
    (de_month, en_month), day = rng.choice(MONTHS), rng.randrange(1, 29)
    return f"{day}. {de_month}", (f"{en_month} {day}" if rng.random() < 0.7 else f"{day} {en_month}")


# Bilingual frames per kind of number; {n} is the number, {x}/{y} a thing or plural noun (German, English).
PRICE_FRAMES = (("{x} hat {n} Euro gekostet.", "{x} cost {n} euros."), ("{x} kostet nur {n} Euro.",
                 "{x} is only {n} euros."), ("Für {x_acc} habe ich {n} Euro bezahlt.", "I paid {n} euros for {x_low}."))
MEASURE_FRAMES = (("Es waren genau {n} {u}.", "It was exactly {n} {u}."), ("Das sind ungefähr {n} {u}.",
                   "That is about {n} {u}."), ("Wir brauchen noch {n} {u}.", "We still need {n} {u}."))
COUNT_FRAMES = (("Wir hatten {n} {y}.", "We had {n} {y}."), ("Sie hat {n} {y} mitgebracht.", "She brought {n} {y}."),
                ("Er zählte {n} {y}.", "He counted {n} {y}."), ("Gibt es hier {n} {y}?", "Are there {n} {y} here?"))
TIME_FRAMES = (("Kommst du um {n}?", "Are you coming at {n}?"), ("Der Kurs fängt um {n} an.",
                "The course starts at {n}."), ("Um {n} gibt es Abendessen.", "Dinner is at {n}."),
               ("Ruf mich um {n} an.", "Call me at {n}."))
DATE_FRAMES = (("Die Feier findet am {n} statt.", "The party is on {n}."),
               ("Er kommt am {n} zurück.", "He is coming back on {n}."),
               ("Bis zum {n} ist das Büro geschlossen.", "The office is closed until {n}."))


def number_pair(rng: random.Random) -> tuple[str, str]:
    """One German/English pair with a number: a price, a decimal measure, a count (in digits, in words, with a
    thousands separator, or a phone number), a clock time or a date, each in a randomly chosen frame."""
    kind = rng.randrange(6)
    if kind <= 1:  # prices: whole euros or with cents
        (de_x, en_x), (de_f, en_f) = rng.choice(THINGS), rng.choice(PRICE_FRAMES)
        de_n, en_n = (str(random_integer(rng)),) * 2 if kind == 0 else random_decimal(rng)
        article = {"Der ": "den ", "Die ": "die ", "Das ": "das "}
        de_acc = next((article[a] + de_x[len(a):] for a in article if de_x.startswith(a)), de_x)
        en_low = en_x[0].lower() + en_x[1:]
        return (de_f.format(x=de_x, x_acc=de_acc, n=de_n), en_f.format(x=en_x, x_low=en_low, n=en_n))
    if kind == 2:
        (de_u, *en_units), (de_f, en_f) = rng.choice(UNITS), rng.choice(MEASURE_FRAMES)
        de_n, en_n = random_decimal(rng)
        return de_f.format(n=de_n, u=de_u), en_f.format(n=en_n, u=rng.choice(en_units))
    if kind == 3:  # a count: in words, in digits, or large with a thousands separator ("1.500" / "1,500")
        (de_y, en_y), (de_f, en_f), roll = rng.choice(PLURALS), rng.choice(COUNT_FRAMES), rng.random()
        if roll < 0.3:
            de_n, en_n = rng.choice(NUMBER_WORDS)
        elif roll < 0.45:
            n = rng.randrange(1000, 1_000_000)
            de_n, en_n = f"{n:,}".replace(",", "."), f"{n:,}"
        elif roll < 0.55:  # a phone or order number: digits copied, leading zero and grouping kept
            de_n = en_n = "0" + " ".join(str(rng.randrange(10**k, 10 ** (k + 1))) for k in (2, rng.choice((4, 5, 6))))
            return f"Die Nummer lautet {de_n}.", f"The number is {en_n}."
        else:
            de_n = en_n = str(random_integer(rng))
        return de_f.format(n=de_n, y=de_y), en_f.format(n=en_n, y=en_y)
    (de_f, en_f), (de_n, en_n) = rng.choice(TIME_FRAMES if kind == 4 else DATE_FRAMES), (
        clock_time(rng) if kind == 4 else date(rng))
    return de_f.format(n=de_n), en_f.format(n=en_n)


def number_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` seeded template pairs with numbers (see ``number_pair``)."""
    return template_pairs(number_pair, count, seed)


def template_pairs(make: Callable[[random.Random], tuple[str, str]], count: int, seed: int
                   ) -> tuple[list[str], list[str]]:
    """``count`` pairs from ``make`` with one seeded generator, as German and English lists."""
    rng = random.Random(seed)
    pairs = [make(rng) for _ in range(count)]
    return [de for de, _ in pairs], [en.replace("m..", "m.") for _, en in pairs]  # "at 3 p.m." ends the sentence


# Numbers in combination and the forms the number-pair templates above left weak (stage 3 of issue 19): years,
# dates with a year or a clock time, "it is ... o'clock", decimals with units, number words, two numbers at once.
# {d}/{D} a date (German/English), {t}/{T} a clock time, {y} a year, {n}/{N} a number, {w}/{W} a number word.
YEAR_FRAMES = (("Das Haus wurde {y} gebaut.", "The house was built in {y}."),
               ("{y} habe ich mein Studium beendet.", "I finished my studies in {y}."),
               ("Im Jahr {y} sind wir umgezogen.", "We moved in {y}."),
               ("Mein Vater ist {y} geboren.", "My father was born in {y}."),
               ("Seit {y} wohnt sie in dieser Stadt.", "She has lived in this town since {y}."),
               ("Das Foto ist von {y}.", "The photo is from {y}."))
DATE_YEAR_FRAMES = (("Er wurde am {d} {y} geboren.", "He was born on {D} {y}."),
                    ("Der Vertrag endet am {d} {y}.", "The contract ends on {D} {y}."),
                    ("Wir haben am {d} {y} geheiratet.", "We got married on {D} {y}."))
DATE_TIME_FRAMES = (("Die Sitzung ist am {d} um {t}.", "The meeting is on {D} at {T}."),
                    ("Am {d} um {t} fährt unser Bus.", "Our bus leaves on {D} at {T}."),
                    ("Das Spiel findet am {d} um {t} statt.", "The match takes place on {D} at {T}."),
                    ("Kannst du am {d} um {t} kommen?", "Can you come on {D} at {T}?"))
NOW_FRAMES = (("Es ist schon {t}.", "It's already {T}."), ("Jetzt ist es {t}.", "It's {T} now."),
              ("Es ist gleich {t}.", "It's almost {T}."),
              ("Wie spät ist es? Es ist {t}.", "What time is it? It's {T}."))
DECIMAL_FRAMES = (("Der Tisch ist {n} Meter lang.", "The table is {N} metres long."),
                  ("Draußen sind es {n} Grad.", "It's {N} degrees outside."),
                  ("Die Temperatur liegt bei {n} Grad.", "The temperature is {N} degrees."),
                  ("Das Kind wiegt {n} Kilo.", "The child weighs {N} kilos."),
                  ("Die Strecke ist {n} Kilometer lang.", "The route is {N} kilometres long."),
                  ("Der Preis ist um {n} Prozent gestiegen.", "The price has gone up by {N} percent."),
                  ("Das Regal ist {n} Meter hoch.", "The shelf is {N} metres high."))
WORD_FRAMES = (("Ich war {w} Tage krank.", "I was sick for {W} days."),
               ("Sie wohnen seit {w} Jahren hier.", "They have lived here for {W} years."),
               ("Wir haben {w} Stunden gewartet.", "We waited {W} hours."),
               ("Er kauft {w} Flaschen Wasser.", "He's buying {W} bottles of water."),
               ("Wir fahren für {w} Wochen nach Frankreich.", "We're going to France for {W} weeks."),
               ("Mein Neffe ist {w} Monate alt.", "My nephew is {W} months old."))
TWO_NUMBER_FRAMES = (("Wir waren {n} Erwachsene und {m} Kinder.", "There were {n} adults and {m} children."),
                     ("Von {n} Gästen sind {m} gekommen.", "Of {n} guests, {m} came."),
                     ("Ich habe {n} Seiten gelesen, {m} fehlen noch.", "I've read {n} pages, {m} are still to go."))


def year(rng: random.Random) -> str:
    """A year, mostly of the last hundred and thirty ones."""
    return str(rng.randrange(1900, 2031) if rng.random() < 0.8 else rng.randrange(1000, 2100))


def date_with_year(rng: random.Random) -> tuple[str, str, str]:
    """(German date, English date, year) for "am 24. Dezember 1990" / "on December 24, 1990" or "24 December 1990"."""
    de, en = date(rng)
    return de, (en + "," if en[0].isalpha() else en), year(rng)


def mixed_number_pair(rng: random.Random) -> tuple[str, str]:
    """One German/English pair from the frames above, with random values."""
    kind = rng.randrange(7)
    if kind == 0:
        (de_f, en_f), y = rng.choice(YEAR_FRAMES), year(rng)
        return de_f.format(y=y), en_f.format(y=y)
    if kind == 1:
        (de_f, en_f), (de_d, en_d, y) = rng.choice(DATE_YEAR_FRAMES), date_with_year(rng)
        return de_f.format(d=de_d, y=y), en_f.format(D=en_d, y=y)
    if kind == 2:
        (de_f, en_f), (de_d, en_d), (de_t, en_t) = rng.choice(DATE_TIME_FRAMES), date(rng), clock_time(rng)
        return de_f.format(d=de_d, t=de_t), en_f.format(D=en_d, T=en_t)
    if kind == 3:
        (de_f, en_f), (de_t, en_t) = rng.choice(NOW_FRAMES), clock_time(rng)
        return de_f.format(t=de_t), en_f.format(T=en_t)
    if kind == 4:
        (de_f, en_f), (de_n, en_n) = rng.choice(DECIMAL_FRAMES), random_decimal(rng)
        return de_f.format(n=de_n), en_f.format(N=en_n)
    if kind == 5:
        (de_f, en_f) = rng.choice(WORD_FRAMES)
        de_w, en_w = rng.choice(NUMBER_WORDS) if rng.random() < 0.7 else (str(random_integer(rng) or 2),) * 2
        return de_f.format(w=de_w), en_f.format(W=en_w)
    (de_f, en_f), n, m = rng.choice(TWO_NUMBER_FRAMES), random_integer(rng), random_integer(rng)
    return de_f.format(n=n, m=m), en_f.format(n=n, m=m)


def mixed_number_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` seeded pairs of ``mixed_number_pair``."""
    return template_pairs(mixed_number_pair, count, seed)
