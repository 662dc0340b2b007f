"""Whole-word, case-insensitive matching of many literal phrases (blocklists
and allowlists of up to 10,000 entries).

A regular-expression alternation of 10,000 phrases costs Python's `re`
milliseconds per text: it tries every alternative at every word start. Here
phrases are indexed by their first two characters, and each position where
a phrase may start costs one dictionary lookup and a slice comparison per
distinct phrase length under that key, whatever the number of phrases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# Where a phrase may start: any character not preceded by a word character.
_STARTS = re.compile(r"(?<!\w).", re.DOTALL)


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
        self._lengths = {key: sorted(lengths, reverse=True) for key, lengths in index.items()}
        # A one-character phrase is filed under a one-character key, looked up after the two-character one.
        self._singles = any(len(key) == 1 for key in index)

    def __len__(self) -> int:
        return len(self.phrases)

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, phrase in lower case) of each match, in text order."""
        if not self.phrases:
            return
        folded = lowered(text)
        last = 0
        for start in _STARTS.finditer(text):
            i = start.start()
            if i < last:
                continue
            end = self._longest(text, folded, i)
            if end:
                yield i, end, folded[i:end]
                last = end

    def _longest(self, text: str, folded: str, i: int) -> int:
        """End of the longest phrase at `i` that ends on a word boundary, or 0."""
        size = len(text)
        keys = (folded[i:i + 2], folded[i]) if self._singles else (folded[i:i + 2],)
        for key in keys:
            for n in self._lengths.get(key, ()):
                j = i + n
                if j <= size and (j == size or not _word(text[j])) and folded[i:j] in self.phrases:
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
