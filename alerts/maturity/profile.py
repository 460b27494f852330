"""What the scan's technology answers change in a subscriber's product profile — pure.

Only questions the owner actually answered change anything: an empty technology question
means "I don't know" (the form says so), so it neither adds nor removes. For an answered
question, its ticked families are added and its unticked families removed; families the
scan never asks about stay as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.maturity.scan import Scan, families


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
    chosen = families(scan, checked)
    asked = {
        option.family
        for question in scan.questions
        if question.kind == "technology" and checked.get(question.id)
        for option in question.options
    }
    kept = [family for family in current if family not in asked or family in chosen]
    added = [family for family in chosen if family not in current]
    removed = [family for family in current if family not in kept]
    return ProfileChange(tuple(kept + added), tuple(added), tuple(removed))
