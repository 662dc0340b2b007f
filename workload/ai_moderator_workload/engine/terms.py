"""Whole-word, case-insensitive matching of many literal phrases (blocklists
and allowlists of up to 10,000 entries).

A regular-expression alternation of 10,000 phrases costs Python's `re`
milliseconds per text: it tries every alternative at every word start. Here
a text is first compared with the set of the phrases' first words (one set
operation: most texts stop there); at a word that starts some phrase, the
phrases under its first two characters are tried by length, only at the word
boundaries within the longest of them. The cost follows the text, not the
number of phrases."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator

# Where a phrase may start: any character not preceded by a word character.
_STARTS = re.compile(r"(?<!\w).", re.DOTALL)
_WORD = re.compile(r"\w+")
_NON_WORD = re.compile(r"\W")


# Lower-case letters `re.IGNORECASE` also takes as equal (re/_casefix.py),
# each class folded to its first letter: σ ς, i ı, s ſ, μ µ, ...
_VARIANTS = str.maketrans({c: cls[0] for cls in (
    "i\u0131", "s\u017f", "\u03bc\u00b5", "\u03b9\u0345\u1fbe", "\u0390\u1fd3", "\u03b0\u1fe3",
    "\u03b2\u03d0", "\u03b5\u03f5", "\u03b8\u03d1", "\u03ba\u03f0", "\u03c0\u03d6", "\u03c1\u03f1",
    "\u03c3\u03c2", "\u03c6\u03d5", "\u0432\u1c80", "\u0434\u1c81", "\u043e\u1c82", "\u0441\u1c83",
    "\u0442\u1c84\u1c85", "\u044a\u1c86", "\u0463\u1c87", "\ua64b\u1c88", "\u1e61\u1e9b",
    "\ufb06\ufb05") for c in cls[1:]})


def lowered(text: str) -> str:
    """`text` folded as `re.IGNORECASE` compares characters, one character
    per character so offsets stay those of `text`: simple lower case (U+0130
    lowers to 'i', as in `re`, not to two characters; Σ to σ wherever it
    stands) and one letter for the variants `re` also takes as equal."""
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower().translate(_VARIANTS)


def _word(c: str) -> bool:
    # Python's `\w` for str patterns.
    return c.isalnum() or c == "_"


class TermMatcher:
    """Finds phrases as `re` would with `(?<!\\w)(?:p1|p2|...)(?!\\w)`, case-
    insensitively and longest first: leftmost matches, not overlapping."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = frozenset(lowered(p) for p in phrases if p)
        index: dict[str, set[int]] = {}
        for phrase in self.phrases:
            index.setdefault(phrase[:2], set()).add(len(phrase))
        self._lengths = {key: frozenset(lengths) for key, lengths in index.items()}
        self._longest_of = {key: max(lengths) for key, lengths in index.items()}
        # A one-character phrase is filed under a one-character key, looked up after the two-character one.
        self._singles = any(len(key) == 1 for key in index)
        # Most lists only hold phrases that start with a word character. A match
        # of one then starts at a word of the text equal to the phrase's first
        # word, so texts without such a word are passed over in one set operation,
        # and only those words are tried.
        self._first_words: frozenset[str] | None = None
        if all(_word(p[0]) for p in self.phrases):
            self._first_words = frozenset(m.group() for p in self.phrases if (m := _WORD.match(p)))

    def __len__(self) -> int:
        return len(self.phrases)

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, phrase in lower case) of each match, in text order."""
        if not self.phrases:
            return
        folded = lowered(text)
        ends: list[int] = []
        last = 0
        for i in self._candidates(folded):
            if i < last:
                continue
            if not ends:
                # Where a phrase may end: before a non-word character, or at the end.
                ends = [m.start() for m in _NON_WORD.finditer(text)]
                ends.append(len(text))
            end = self._longest(folded, ends, i)
            if end:
                yield i, end, folded[i:end]
                last = end

    def _candidates(self, folded: str) -> Iterator[int]:
        if self._first_words is None:
            yield from (m.start() for m in _STARTS.finditer(folded))
        elif not self._first_words.isdisjoint(_WORD.findall(folded)):
            yield from (m.start() for m in _WORD.finditer(folded) if m.group() in self._first_words)

    def _longest(self, folded: str, ends: list[int], i: int) -> int:
        """End of the longest phrase at `i` that ends on a word boundary, or
        0. Only the boundaries within the longest phrase under the key are
        tried, longest first: a few, however many phrases share the key."""
        keys = (folded[i:i + 2], folded[i]) if self._singles else (folded[i:i + 2],)
        for key in keys:
            lengths = self._lengths.get(key)
            if lengths is None:
                continue
            first = bisect_right(ends, i)
            for k in range(bisect_right(ends, i + self._longest_of[key], first) - 1, first - 1, -1):
                j = ends[k]
                if j - i in lengths and folded[i:j] in self.phrases:
                    return j
        return 0

    def mask(self, text: str) -> str:
        """`text` with every match blanked by as many spaces, so offsets into
        it stay valid against `text`."""
        pieces: list[str] = []
        last = 0
        for start, end, _ in self.finditer(text):
            pieces += [text[last:start], " " * (end - start)]
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)
