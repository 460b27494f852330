"""What the scan's technology answers change in a subscriber's product profile — pure.

Only questions the owner actually answered change anything: an empty technology question
means "I don't know" (the form says so), so it neither adds nor removes. For an answered
question, its ticked families are added and its unticked families removed; families the
scan never asks about stay as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.maturity.scan import Scan


@dataclass(frozen=True)
class ProfileChange:
    families: tuple[str, ...]  # the new profile, current order kept, additions after
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return bool(self.added or self.removed)


def profile_change(
    scan: Scan, checked: Mapping[str, str | Sequence[str]], current: Sequence[str]
) -> ProfileChange:
    """The profile after applying checked answers (see `scan.check_answers`)."""
    chosen: list[str] = []
    asked: set[str] = set()
    for question in scan.questions:
        picked = checked.get(question.id) if question.kind == "technology" else None
        if not picked:
            continue
        asked |= {option.family for option in question.options}
        chosen += [option.family for option in question.options if option.family in picked]
    kept = [family for family in current if family not in asked or family in chosen]
    added = [family for family in dict.fromkeys(chosen) if family not in current]
    removed = [family for family in current if family not in kept]
    return ProfileChange(tuple(kept + added), tuple(added), tuple(removed))
