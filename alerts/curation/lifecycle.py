"""The alert life cycle as a pure table: which action may move an alert from which status,
who may take it, and the four-eyes rule. The web pages and the command line ask this module;
only `alerts.curation.service` changes the database.

    draft ─submit→ submitted ─approve→ approved ─schedule→ scheduled
      ↑              │ reject                │ send            │ send (at its time)
      └── edit ──────┴──→ rejected           └─→ sending ─→ sent
    any edit after approval goes back to submitted; cancel before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.curation.models import (
    APPROVED,
    CANCELLED,
    DRAFT,
    REJECTED,
    SCHEDULED,
    SENDING,
    SUBMITTED,
)
from alerts.staff.models import APPROVER, EDITOR, RANK

EDIT, SUBMIT, APPROVE, REJECT = "edit", "submit", "approve", "reject"
SCHEDULE, UNSCHEDULE, SEND, CANCEL = "schedule", "unschedule", "send", "cancel"
ACTIONS = (EDIT, SUBMIT, APPROVE, REJECT, SCHEDULE, UNSCHEDULE, SEND, CANCEL)


@dataclass(frozen=True)
class Rule:
    from_statuses: tuple[str, ...]
    minimum_role: str


RULES = {
    EDIT: Rule((DRAFT, SUBMITTED, APPROVED, SCHEDULED, REJECTED), EDITOR),
    SUBMIT: Rule((DRAFT,), EDITOR),
    APPROVE: Rule((SUBMITTED,), APPROVER),
    REJECT: Rule((SUBMITTED,), APPROVER),
    SCHEDULE: Rule((APPROVED,), APPROVER),
    UNSCHEDULE: Rule((SCHEDULED,), APPROVER),
    SEND: Rule((APPROVED, SCHEDULED), APPROVER),
    CANCEL: Rule((DRAFT, SUBMITTED, APPROVED, SCHEDULED, REJECTED), EDITOR),
}
# Cancelling what an approver already cleared takes an approver too.
CANCEL_APPROVED_ROLE = APPROVER


class TransitionRefused(Exception):
    """The action is not possible now, or not for this person; the message says why."""


@dataclass(frozen=True)
class Actor:
    id: int
    role: str


def next_status(status: str, action: str) -> str:
    """Where the action leads (before any permission check)."""
    if action == EDIT:
        return DRAFT if status in (DRAFT, REJECTED) else SUBMITTED
    return {
        SUBMIT: SUBMITTED,
        APPROVE: APPROVED,
        REJECT: REJECTED,
        SCHEDULE: SCHEDULED,
        UNSCHEDULE: APPROVED,
        SEND: SENDING,
        CANCEL: CANCELLED,
    }[action]


def check(status: str, action: str, actor: Actor, last_editor_id: int | None) -> str:
    """The status after `action`, or TransitionRefused. Four-eyes: nobody approves an
    alert whose text they were the last to change — not even an admin."""
    rule = RULES.get(action)
    if rule is None:
        raise TransitionRefused(f"unknown action {action!r}")
    if status not in rule.from_statuses:
        raise TransitionRefused(f"an alert that is {status} cannot be given '{action}'")
    needed = (
        CANCEL_APPROVED_ROLE
        if action == CANCEL and status in (APPROVED, SCHEDULED)
        else (rule.minimum_role)
    )
    if RANK.get(actor.role, 0) < RANK[needed]:
        raise TransitionRefused(f"'{action}' needs the {needed} role")
    if action == APPROVE and last_editor_id is not None and actor.id == last_editor_id:
        raise TransitionRefused("you changed this alert last: someone else must approve it")
    return next_status(status, action)


def allowed(status: str, actor: Actor, last_editor_id: int | None) -> list[str]:
    """The actions this person may take now (for the buttons a page shows)."""
    possible = []
    for action in ACTIONS:
        try:
            check(status, action, actor, last_editor_id)
        except TransitionRefused:
            continue
        possible.append(action)
    return possible
