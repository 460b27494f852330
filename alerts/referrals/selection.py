"""The firms each message of an alert shows, for the delivery worker: the directory read at
most once a minute, matching and rotation from `matching`, the referral links, and the
anonymous "shown" counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from alerts.compose import Firm as FirmView
from alerts.curation.models import Alert, AlertAdvisory
from alerts.models import Advisory
from alerts.referrals import directory, matching
from alerts.referrals.links import referral_url
from alerts.referrals.models import VETTED, Firm
from alerts.relevance.catalogue import Catalogue
from alerts.store import Database
from subscribers.tokens import Signer

RELOAD_SECONDS = 60


class Referrals:
    def __init__(
        self,
        database: Database,
        catalogue: Catalogue,
        base_url: str,
        signer: Signer,
        clock: Callable[[], datetime],
    ):
        self.database, self.catalogue = database, catalogue
        self.base_url, self.signer, self.clock = base_url, signer, clock
        self._loaded_at = -RELOAD_SECONDS
        self._firms: dict[int, Firm] = {}
        self._eligible: dict[tuple, list[matching.Match]] = {}
        self._ransomware_of: dict[int, bool] = {}

    def choose(self, alert: Alert, region: str, language: str, subscriber_id: int) -> tuple:
        """The ids of the firms this subscriber sees with this alert, in order ((): none)."""
        key = (alert.id, alert.updated_at, region, language)
        eligible = self._eligible.get(key)
        if eligible is None:
            eligible = self._eligible[key] = self._matches(alert, region, language)
        if not eligible:  # the common case with no firm for this region: no draw to make
            return ()
        chosen = matching.choose(eligible, alert.id, subscriber_id)
        return tuple(match.firm_id for match in chosen)

    def views(self, alert: Alert, firm_ids: tuple) -> list[FirmView]:
        """The chosen firms as the referral block shows them; their website link goes
        through our counting redirect."""
        return [
            entry(firm, referral_url(self.base_url, self.signer, alert.id, firm.id))
            for firm in (self._firms[firm_id] for firm_id in firm_ids)
        ]

    def count_shown(self, alert_id: int, firm_ids: tuple, messages: int) -> None:
        if not firm_ids or not messages:
            return
        with self.database.session() as session:
            directory.count(
                session,
                alert_id,
                self.clock(),
                shown=dict.fromkeys(firm_ids, messages),
                first={firm_ids[0]: messages},
            )

    def _matches(self, alert: Alert, region: str, language: str) -> list[matching.Match]:
        self._reload()
        families = (alert.targeting or {}).get("families") or ()
        known = (self.catalogue.get(family) for family in families)
        categories = [family.category for family in known if family is not None]
        need = matching.need_for(categories, alert.known_exploited, self._ransomware(alert.id))
        candidates = [candidate(firm) for firm in self._firms.values()]
        today = directory.today(self.clock())
        return matching.eligible(candidates, need, region, language, today)

    def _ransomware(self, alert_id: int) -> bool:
        """Whether an advisory the alert was written from reports ransomware use (asked
        once per alert, not once per region and language)."""
        if alert_id not in self._ransomware_of:
            self._ransomware_of[alert_id] = self._ask_ransomware(alert_id)
        return self._ransomware_of[alert_id]

    def _ask_ransomware(self, alert_id: int) -> bool:
        used = (
            select(AlertAdvisory.advisory_id)
            .join(Advisory, Advisory.id == AlertAdvisory.advisory_id)
            .where(AlertAdvisory.alert_id == alert_id, Advisory.ransomware.is_(True))
        )
        with self.database.session() as session:
            return bool(session.scalar(select(used.exists())))

    def _reload(self) -> None:
        if time.monotonic() - self._loaded_at < RELOAD_SECONDS:
            return
        with self.database.session() as session:
            firms = directory.shown(session, self.clock())
            session.expunge_all()
        self._firms = {firm.id: firm for firm in firms}
        self._eligible.clear()
        self._ransomware_of.clear()
        self._loaded_at = time.monotonic()


def entry(firm: Firm, website: str | None = None) -> FirmView:
    """A stored firm as a "Who can help" block (message or report) shows it; `website`
    replaces its address (messages link through the counting redirect)."""
    return FirmView(
        name=firm.name,
        website=website or firm.website,
        phone=firm.phone,
        email=firm.email,
        kmo_portefeuille=bool(firm.kmo_portefeuille),
        specialities=tuple(firm.specialities or ()),
    )


def candidate(firm: Firm) -> matching.Candidate:
    """What matching needs of a stored firm."""
    return matching.Candidate(
        id=firm.id,
        regions=frozenset(firm.regions or ()),
        languages=frozenset(firm.languages or ()),
        specialities=frozenset(firm.specialities or ()),
        vetted=firm.status == VETTED,
        expires_on=firm.expires_on,
    )
