"""The 13 categories of OpenAI's moderation API, in its order: written once,
as the type (what the policy and the API accept) that the tuple comes from."""

from collections.abc import Iterable
from typing import Final, Literal, get_args

Category = Literal[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
]
CATEGORIES: Final[tuple[str, ...]] = get_args(Category)

# A category hit implies these others at the same strength, as in OpenAI's
# taxonomy: a sub-category implies its parent, and a threat (harassment or hate
# "that also includes violence") implies violence.
IMPLIES: Final[dict[str, tuple[str, ...]]] = {
    "harassment/threatening": ("harassment", "violence"),
    "hate/threatening": ("hate", "violence"),
}
PARENTS: Final[dict[str, str]] = {
    "harassment/threatening": "harassment",
    "hate/threatening": "hate",
    "illicit/violent": "illicit",
    "self-harm/intent": "self-harm",
    "self-harm/instructions": "self-harm",
    "sexual/minors": "sexual",
    "violence/graphic": "violence",
}


def with_implied(labels: Iterable[str]) -> tuple[str, ...]:
    """The labels and every category they imply, in CATEGORIES order."""
    found = set(labels)
    for label in list(found):
        if label in PARENTS:
            found.add(PARENTS[label])
        found.update(IMPLIES.get(label, ()))
    return tuple(c for c in CATEGORIES if c in found)
