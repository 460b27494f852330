"""Which vetted firms an alert shows a subscriber, and why — pure functions.

1. What help the alert calls for: its product categories and whether the flaw is exploited
   or used by ransomware map onto specialities (edge-device exploitation → incident
   response and network; ransomware → incident response and backup; a CMS flaw → web/CMS
   security; …), each with the reason.
2. Which firms qualify for this subscriber: shown now (vetted, not expired), serving their
   region and speaking their language, with at least one wanted speciality.
3. Which three of them, in which order: rendezvous hashing of (alert, subscriber, firm).
   Every eligible firm is equally likely in every position, so over many messages each gets
   an equal share of appearances and of first places; the same (alert, subscriber) always
   gives the same firms, so a resend shows what the first send showed; and the choice can
   be recomputed by anyone who wants to check it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

SHOWN = 3

# category -> specialities, and why (the message staff and firms can read).
CATEGORY_HELP = {
    "edge": (("incident-response", "network-firewall"), "a firewall, VPN or other edge device"),
    "remote-access": (("incident-response", "network-firewall"), "remote access"),
    "network": (("network-firewall",), "network equipment"),
    "cms": (("web-cms-security",), "a website or CMS"),
    "ecommerce": (("web-cms-security",), "a web shop"),
    "web-server": (("web-cms-security",), "a web server"),
    "email": (("managed-security", "incident-response"), "email"),
    "backup": (("backup-recovery",), "backups"),
    "nas": (("backup-recovery",), "file storage (NAS)"),
    "file-transfer": (("incident-response",), "file transfer"),
}
EXPLOITED_HELP = (("incident-response",), "attackers already exploit it")
RANSOMWARE_HELP = (("incident-response", "ransomware-recovery", "backup-recovery"), "ransomware")
GENERAL_HELP = (("security-audit", "managed-security"), "keeping systems up to date")


@dataclass(frozen=True)
class Need:
    specialities: frozenset[str]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """What matching needs of a firm."""

    id: int
    regions: frozenset[str]
    languages: frozenset[str]
    specialities: frozenset[str]
    vetted: bool
    expires_on: date | None


@dataclass(frozen=True)
class Match:
    firm_id: int
    reasons: tuple[str, ...]


def need_for(categories: Iterable[str], exploited: bool, ransomware: bool) -> Need:
    """The specialities an alert about these product categories calls for, with reasons."""
    wanted: list[str] = []
    reasons: list[str] = []
    for category in sorted(set(categories)):
        if category in CATEGORY_HELP:
            specialities, why = CATEGORY_HELP[category]
            wanted += specialities
            reasons.append(f"the alert concerns {why}")
    for condition, (specialities, why) in (
        (exploited, EXPLOITED_HELP),
        (ransomware, RANSOMWARE_HELP),
    ):
        if condition:
            wanted += specialities
            reasons.append(f"{why}")
    if not wanted:
        wanted, reasons = list(GENERAL_HELP[0]), [GENERAL_HELP[1]]
    return Need(frozenset(wanted), tuple(reasons))


def eligible(
    firms: Iterable[Candidate], need: Need, region: str, language: str, today: date
) -> list[Match]:
    """Firms that may be shown to this subscriber for this alert, with the reasons."""
    matches = []
    for firm in firms:
        if not firm.vetted or firm.expires_on is None or firm.expires_on <= today:
            continue
        if region not in firm.regions or language not in firm.languages:
            continue
        fits = sorted(firm.specialities & need.specialities)
        if not fits:
            continue
        reasons = (
            f"serves {region}",
            f"works in {language}",
            f"offers {', '.join(fits)}",
        )
        matches.append(Match(firm.id, reasons))
    return matches


def choose(matches: Sequence[Match], alert_id: int, subscriber_id: int, k: int = SHOWN):
    """Up to k matches in display order: highest rendezvous weight first."""
    return sorted(matches, key=lambda match: _weight(alert_id, subscriber_id, match.firm_id))[:k]


def _weight(alert_id: int, subscriber_id: int, firm_id: int) -> bytes:
    """A uniform, reproducible draw per (alert, subscriber, firm); lowest shows first."""
    return hashlib.blake2b(f"{alert_id}:{subscriber_id}:{firm_id}".encode(), digest_size=8).digest()
