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


def lowered(text: str) -> str:
    """Lower case with one character per character, so offsets stay those of
    `text` (a few characters, such as U+0130, lower to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


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
