"""TermMatcher: the matches of a whole-word, case-insensitive regex
alternation of literal phrases (longest first), without the regex."""

from __future__ import annotations

import random
import re
import sys

import pytest

from ai_moderator_workload.engine.terms import TermMatcher, lowered

# Letters whose case folding is unusual (İ lowers to two characters, σ/ς/Σ,
# ı/i, ſ/s, the Kelvin sign), a combining mark (not a word character), other
# scripts, digits of another script, the underscore (a word character) and
# punctuation (not).
ALPHABET = list("abAB") + list("iIİısSſσςΣkKK") + list("éÉßẞǅ中٣\u0301") + list("1_") + list(" -.!#'")


def reference(phrases: list[str], text: str) -> list[tuple[int, int]]:
    """What `re` finds: leftmost matches, longest alternative first, not overlapping."""
    phrases = [p for p in phrases if p]
    if not phrases:
        return []
    alternation = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
    return [(m.start(), m.end()) for m in re.finditer(rf"(?<!\w)(?:{alternation})(?!\w)", text, re.IGNORECASE)]


def reference_mask(phrases: list[str], text: str) -> str:
    found = reference(phrases, text)
    out = list(text)
    for start, end in found:
        out[start:end] = " " * (end - start)
    return "".join(out)


def spans(matcher: TermMatcher, text: str) -> list[tuple[int, int]]:
    return [(start, end) for start, end, _ in matcher.finditer(text)]


def random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def random_phrases(rng: random.Random, texts: list[str]) -> list[str]:
    """Phrases that occur in the texts (cut at random, so they start and end
    anywhere: on punctuation, inside words, with one character), in random
    case, and some made up."""
    phrases = []
    for _ in range(rng.randint(1, 25)):
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        piece = text[start:start + rng.choice([1, 1, 2, 3, 4, 6, 9])]
        phrases.append("".join(c.upper() if rng.random() < 0.3 else c for c in piece))
    phrases += [random_text(rng, rng.randint(1, 5)) for _ in range(rng.randint(0, 5))]
    return phrases


@pytest.mark.parametrize("seed", range(60))
def test_matches_are_the_regex_alternations_on_random_phrases_and_texts(seed: int) -> None:
    rng = random.Random(seed)
    texts = [random_text(rng, rng.randint(0, 80)) for _ in range(20)]
    texts = [t for t in texts if t] or ["a"]
    phrases = random_phrases(rng, texts)
    matcher = TermMatcher(phrases)
    for text in texts:
        found = list(matcher.finditer(text))
        assert [(s, e) for s, e, _ in found] == reference(phrases, text), (phrases, text)
        for start, end, term in found:
            # The phrase as the matcher names it (a blocklist looks its category up by it).
            assert term in matcher.phrases
            assert re.fullmatch(re.escape(term), text[start:end], re.IGNORECASE)


@pytest.mark.parametrize("seed", range(20))
def test_words_of_a_small_vocabulary_match_like_the_regex(seed: int) -> None:
    """Texts made of whole words, so most candidates overlap: a phrase that is
    the start of a longer one, multi-word phrases sharing words."""
    rng = random.Random(1000 + seed)
    vocabulary = ["ab", "abc", "a", "b", "İl", "il", "ıl", "ſa", "sa", "σας", "ΣΑΣ", "x_y", "x", "y", "-x", "x!",
                  "#a", "é", "É1", "中文"]
    texts = [rng.choice([" ", "", "-", ". "]).join(rng.choice(vocabulary) for _ in range(rng.randint(1, 30)))
             for _ in range(15)]
    phrases = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 12))]
    phrases += rng.sample(vocabulary, 4)
    matcher = TermMatcher(phrases)
    for text in texts:
        assert spans(matcher, text) == reference(phrases, text), (phrases, text)
        assert matcher.mask(text) == reference_mask(phrases, text)


@pytest.mark.parametrize(("phrase", "text", "expected"), [
    ("istanbul", "İstanbul", [(0, 8)]),  # re lowers İ to i
    ("İstanbul", "visit ISTANBUL", [(6, 14)]),
    ("οδοσ", "ΟΔΟΣ", [(0, 4)]),  # σ and ς are one letter to re
    ("ΟΔΟΣ", "İ ΟΔΟΣ", [(2, 6)]),  # an İ elsewhere in the text changes nothing
    ("ſtop", "STOP", [(0, 4)]),
    ("kelvin", "\u212aelvin", [(0, 6)]),
    ("x", "x_x x", [(4, 5)]),  # the underscore is a word character
    ("x", "x\u0301", [(0, 1)]),  # a combining mark is not
    ("-x", "a-x -x", [(4, 6)]),  # a phrase led by punctuation needs no word character before it
    ("x!", "x!y x!", [(4, 6)]),  # one ending in punctuation needs none after it
    ("a", "٣a a٣ a", [(6, 7)]),  # digits of any script are word characters
])
def test_unicode_and_word_boundaries_follow_the_regex(phrase: str, text: str, expected: list[tuple[int, int]]) -> None:
    assert reference([phrase], text) == expected  # the cases say what re does
    assert spans(TermMatcher([phrase]), text) == expected


def test_case_folding_takes_exactly_the_characters_re_takes_as_equal() -> None:
    cased = [chr(c) for c in range(sys.maxunicode + 1)
             if chr(c).lower() != chr(c) or chr(c).upper() != chr(c) or lowered(chr(c)) != chr(c)]
    haystack = "\0".join(cased)
    folded: dict[str, set[str]] = {}
    for c in cased:
        folded.setdefault(lowered(c), set()).add(c)
    for c in cased:
        assert len(lowered(c)) == 1
        assert set(re.findall(re.escape(c), haystack, re.IGNORECASE)) == folded[lowered(c)], c


def test_the_longest_phrase_that_ends_on_a_word_boundary_wins() -> None:
    matcher = TermMatcher(["new", "new york", "new york city", "york"])
    assert spans(matcher, "New York Citylights, new york city") == [(0, 8), (21, 34)]
    assert spans(matcher, "newyork new") == [(8, 11)]


def test_one_character_phrases_match_alone_and_beside_longer_ones() -> None:
    matcher = TermMatcher(["a", "ab", "!"])
    assert spans(matcher, "a ab abc ! a!b") == reference(["a", "ab", "!"], "a ab abc ! a!b")
    assert spans(matcher, "a ab abc ! a!b") == [(0, 1), (2, 4), (9, 10), (11, 12)]


def test_mask_blanks_matches_and_keeps_length_and_offsets() -> None:
    matcher = TermMatcher(["kill the process", "İstanbul"])
    text = "Please KILL THE PROCESS in istanbul, then kill the processes."
    masked = matcher.mask(text)
    assert len(masked) == len(text)
    assert masked == "Please " + " " * 16 + " in " + " " * 8 + ", then kill the processes."
    # Offsets past a masked phrase still point at the same characters.
    assert masked[text.index("then"):].startswith("then")
    assert matcher.mask("nothing here") == "nothing here"
    assert TermMatcher([]).mask("anything") == "anything"
    assert list(TermMatcher(["", ""]).finditer("a b")) == []


def test_ten_thousand_phrases_are_found_at_the_start_middle_and_end_of_a_long_text() -> None:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    phrases: set[str] = set()
    while len(phrases) < 10_000:
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 8))) for _ in range(rng.randint(1, 3))]
        phrases.add(" ".join(words))
    matcher = TermMatcher(phrases)
    assert len(matcher) == 10_000
    first, middle, last = rng.sample(sorted(phrases), 3)
    # Filler no phrase can match (digits), with near misses of the chosen phrases between.
    filler = " ".join(str(rng.randint(0, 10**6)) for _ in range(20_000))
    misses = f" {first}x _{middle} {last[:-1]} "
    text = f"{first.upper()} {filler}{misses}{middle} {filler}{misses}{last.title()}"
    assert len(text) > 250_000
    middle_at = text.index(f"{misses}{middle} ") + len(misses)
    expected = [(0, len(first)), (middle_at, middle_at + len(middle)), (len(text) - len(last), len(text))]
    assert spans(matcher, text) == expected
    assert [term for _, _, term in matcher.finditer(text)] == [first, middle, last]
