"""What a user probably meant: the item whose title they typed where an id was expected, the
field or key closest to a misspelt one."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence

_TRAILING_PARENTHESES = re.compile(r"\s*\([^()]*\)\s*$")
# MovieLens and library catalogues file "The Godfather" as "Godfather, The", "Les Misérables" as
# "Misérables, Les": a title's trailing article after a comma (before its year too: "Godfather, The
# (1972)" is "the godfather 1972"), or a leading one, is not a word to match
_MOVED_ARTICLE = re.compile(r",\s*(the|a|an|les|la|le|l'|il|el|der|die|das)\s*(?=\([^()]*\)\s*$|$)", re.IGNORECASE)
# not "die": Die Hard; "l'" with or without a space ("L'Avventura" is filed "Avventura, L'")
_LEADING_ARTICLE = re.compile(r"^(?:(the|a|an|les|la|le|il|el)\s+|l['\u2019]\s*)", re.IGNORECASE)
_APOSTROPHES = re.compile(r"['\u2019]")  # "Schindler's" is "schindlers"
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def titles_matching(text: str, titles: Sequence[str], among: Iterable[int] | None = None, limit: int = 5) -> list[int]:
    """Indices of up to ``limit`` titles that hold every word of ``text`` (case, spacing and
    accents aside, as :class:`TitleIndex` compares), those that start with it first, then in
    index order: what a user who typed ``"star wars"`` where an item id was expected probably
    meant (``Star Wars (1977)``). ``among``: the indices to consider (default: all)."""
    typed = _title_key(text)  # "Amélie" composed or decomposed, "STRASSE" for "Straße" (lower() kept the ß)
    words = typed.split()
    if not words:
        return []
    candidates = list(range(len(titles)) if among is None else among)
    hits = [int(i) for i in candidates for key in (_title_key(titles[i]),) if all(w in key for w in words)]
    if not hits:  # "Star Wars:", "schindlers list", "the lion king": punctuation and articles aside
        loose = _loose_key(_TRAILING_PARENTHESES.sub("", text)).split()
        hits = [int(i) for i in candidates if loose and all(w in _loose_key(titles[i]) for w in loose)]
    hits.sort(key=lambda i: not _title_key(titles[i]).startswith(typed))  # stable: index order within
    return hits[:limit]


class TitleIndex:
    """Items by title, what an id lookup falls back to. ``lookup("toy story (1995)")`` finds the
    titles that are the text, case, spacing and accents aside (``Toy Story (1995)``); when none is, those
    that are the text once a trailing parenthesised part is dropped (``"Cape Fear"`` finds both
    ``Cape Fear (1962)`` and ``Cape Fear (1991)``); when none is, the same two once punctuation
    and a leading or moved article are aside as well (``"the lion king"`` and ``"lion king"``
    find ``Lion King, The (1994)``, ``"schindlers list"`` ``Schindler's List (1993)``, ``"toy
    story 1995"`` ``Toy Story (1995)``). One index names the item; several are ambiguous."""

    def __init__(self, titles: Sequence[str]) -> None:
        self._keys: list[dict[str, list[int]]] = [{}, {}, {}, {}]  # exact, bare, loose, loose bare
        for i, title in enumerate(titles):
            bare = _TRAILING_PARENTHESES.sub("", str(title))
            for index, key in zip(self._keys, (_title_key(title), _title_key(bare), _loose_key(title), _loose_key(bare)), strict=True):
                index.setdefault(key, []).append(i)

    def lookup(self, text: str, keep: Sequence[bool] | None = None) -> list[int]:
        """Indices titled ``text`` (see the class), among those where ``keep`` is true."""
        exact, loose = _title_key(text), _loose_key(text)
        for index, key in zip(self._keys, (exact, exact, loose, loose), strict=True):
            found = [i for i in index.get(key, []) if keep is None or keep[i]] if key else []
            if found:
                return found
        return []


def _title_key(text: str) -> str:
    """``text`` with case, spacing and accents aside (``"Misérables, Les"`` as ``"miserables, les"``,
    composed or decomposed; Turkish ``"KIRK"`` as ``"Kırk"``, whose dotless ı is I in capitals)."""
    return without_accents(" ".join(str(text).split()).casefold()).replace("\u0131", "i")


def _loose_key(text: str) -> str:
    """:func:`_title_key` without punctuation and without a leading or moved article
    (``"Godfather: Part II, The"`` as ``"godfather part ii"``)."""
    text = _LEADING_ARTICLE.sub("", _MOVED_ARTICLE.sub("", " ".join(str(text).split())))
    return " ".join(_PUNCTUATION.sub(" ", _APOSTROPHES.sub("", _title_key(text))).split())


def without_accents(text: str) -> str:
    """``text`` with its accents dropped, composed or decomposed (``"Café"`` -> ``"Cafe"``)."""
    if text.isascii():  # most titles: as they are (decomposing each character took seconds for 100k titles)
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def id_key(text: object) -> str:
    """An id with letter case and surrounding spaces aside: ``"U101"`` and ``" u101"`` as ``"u101"``."""
    return str(text).strip().casefold()


class CaseIndex:
    """Ids by :func:`id_key`, built once: what an unknown id that differs from known ones in
    letter case (or spaces) only probably meant, without a scan of every id per lookup."""

    def __init__(self, ids: Iterable[object]) -> None:
        self._ids: dict[str, list[str]] = {}
        for token in ids:
            self._ids.setdefault(id_key(token), []).append(str(token))

    def hint(self, text: str) -> str:
        """:func:`case_hint` of the ids that are ``text`` but for case and spaces."""
        return case_hint(text, self._ids.get(id_key(text), []))


def case_hint(text: str, found: Sequence[str]) -> str:
    """``"; ids are case-sensitive: did you mean 'u101'?"`` for the ids ``found`` that differ from
    ``text`` (the first three), to follow an unknown-id message; ``""`` when none does."""
    names = [str(f) for f in found if str(f) != text]
    if not names:
        return ""
    listed = " or ".join(f"'{n}'" for n in names[:3])
    return f"; ids are case-sensitive: did you mean {listed}?"


def did_you_mean(text: str, ids: Sequence[str], titles: Sequence[str], among: Iterable[int] | None = None) -> str:
    """To end an unknown-id message: ``"; ids are case-sensitive: did you mean 'P0045'?"`` when
    ids (among ``among``) are ``text`` but for letter case and surrounding spaces (``p0045``),
    else ``'; by title, did you mean 50 "Star Wars (1977)"'`` for the titles matching ``text``
    (:func:`titles_matching`); ``""`` when neither matches. Lookups stay exact: this only names
    the id meant."""
    candidates = list(range(len(ids)) if among is None else among)
    key = id_key(text)
    same = [ids[int(i)] for i in candidates if id_key(ids[int(i)]) == key]
    if hint := case_hint(text, same):
        return hint
    matches = titles_matching(text, titles, candidates)
    return "; by title, did you mean " + " or ".join(f'{ids[i]} "{titles[i]}"' for i in matches) if matches else ""


def ambiguous_title(text: str, ids: Sequence[str], titles: Sequence[str], found: Sequence[int]) -> str:
    """``'Cape Fear' is the title of 2 items, 673 "Cape Fear (1991)" and 1023 "Cape Fear (1962)";
    give its id``: the message for a title :class:`TitleIndex` finds more than once."""
    listed = [f'{ids[i]} "{titles[i]}"' for i in found]
    return f"'{text}' is the title of {len(found)} items, {', '.join(listed[:-1])} and {listed[-1]}; give its id"


def closest(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'transform'?)"`` for the choice closest to a misspelt ``word``
    (``difflib``'s ratio >= 0.6; a choice that differs in letter case only comes first, ``CLASS``
    -> ``class``), to follow an unknown-key message; ``""`` when none is close."""
    choices = [str(c) for c in choices]
    folded = sorted(c for c in choices if c.casefold() == str(word).casefold())  # not the order of a set
    if len(folded) > 1:  # "Title" for TITLE and title: the one that differs in the fewest letters
        folded.sort(key=lambda c: -difflib.SequenceMatcher(None, str(word), c).ratio())
    close = folded or difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def some_names(names: Sequence[str], shown: int = 3) -> str:
    """``'a.csv', 'b.csv', 'c' and 2 more``: the first ``shown`` of ``names``, quoted."""
    listed = ", ".join(repr(str(n)) for n in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")
