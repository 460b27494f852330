"""An Alert row as the composition stage reads it (alerts.compose.AlertContent)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from alerts.compose import AlertContent, AlertText, Firm
from alerts.curation.models import Alert


def alert_content(alert: Alert, public_base_url: str) -> AlertContent:
    texts = {
        language: AlertText(
            title=text.get("title", ""),
            what=text.get("what", ""),
            affected=text.get("affected", ""),
            actions=tuple(text.get("actions") or ()),
            urgency=text.get("urgency", ""),
        )
        for language, text in (alert.texts or {}).items()
    }
    return AlertContent(
        alert_id=alert.id,
        tier=alert.tier,
        public_url=f"{public_base_url.rstrip('/')}/alerts/{alert.id}",
        texts=texts,
        cves=tuple(alert.cves or ()),
        known_exploited=alert.known_exploited,
        links=tuple((label, url) for label, url in alert.links or ()),
        published=_local_day(alert.approved_at),
    )


def alert_firms(alert: Alert) -> list[Firm]:
    """The referral block's firms as given on the alert (the directory will choose later)."""
    fields = set(Firm.__dataclass_fields__)
    return [
        Firm(**{k: tuple(v) if isinstance(v, list) else v for k, v in firm.items() if k in fields})
        for firm in alert.firms or ()
    ]


def _local_day(moment: datetime | None) -> date | None:
    """The day as Belgian readers count it (an alert approved at 00:30 is of that day)."""
    return moment.astimezone(BRUSSELS).date() if moment else None


BRUSSELS = ZoneInfo("Europe/Brussels")
