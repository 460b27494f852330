"""Test data for delivery: confirmed subscribers inserted in bulk, an approved alert, and
settings pointing the real channels at the fake providers on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy import insert

from alerts.curation.models import APPROVED, Alert
from subscribers.models import Subscriber
from subscribers.tokens import Signer

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SENDGRID_KEY = "SG.test-key"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "test-token"  # what the fake SMS server expects

TEXTS = {
    "en": {
        "title": "FortiGate SSL-VPN flaw exploited",
        "what": "Attackers take over FortiGate firewalls through a flaw in the SSL-VPN.",
        "affected": "Businesses with a Fortinet FortiGate firewall.",
        "actions": ["Update FortiOS today.", "Check the logs for unknown VPN logins."],
        "urgency": "Act today",
    },
    "nl": {
        "title": "Lek in FortiGate SSL-VPN wordt misbruikt",
        "what": "Aanvallers nemen FortiGate-firewalls over via een lek in de SSL-VPN.",
        "affected": "Bedrijven met een Fortinet FortiGate-firewall.",
        "actions": ["Werk FortiOS vandaag bij.", "Controleer de logs op onbekende VPN-logins."],
        "urgency": "Vandaag handelen",
    },
}


def provider_settings(settings, sendgrid, sms=None, **more):
    """The real SendGrid client and SMS channel, aimed at the fakes."""
    values = {
        "email_channel": "sendgrid",
        "sendgrid_api_key": SecretStr(SENDGRID_KEY),
        "sendgrid_host": sendgrid.base,
        "mail_from": "Cyber alerts <alerts@alerts.example>",
        "http_timeout": 1.0,
        "secret_key": SecretStr("delivery-test-signing-key-0123456789"),
    }
    if sms is not None:
        values |= {
            "sms_channel": "twilio",
            "twilio_account_sid": TWILIO_SID,
            "twilio_auth_token": SecretStr(TWILIO_TOKEN),
            "twilio_base_url": sms.base,
            "sms_from": "CyberAlert",
        }
    return settings.model_copy(update=values | more)


def add_subscribers(database, settings, count: int, start: int = 0, **fields) -> list[int]:
    """`count` active subscribers (email, and SMS when given a phone template)."""
    signer = Signer(settings.signing_key())
    rows = [_row(signer, start + number, fields) for number in range(count)]
    with database.session() as session:
        for chunk in range(0, len(rows), 5000):
            session.execute(insert(Subscriber), rows[chunk : chunk + 5000])
        return [row.id for row in session.query(Subscriber.id).order_by(Subscriber.id)]


def _row(signer: Signer, number: int, fields: dict) -> dict:
    email = fields.get("email", "owner{n}@shop{n}.example").format(n=number)
    phone = fields.get("phone")
    phone = phone.format(n=number) if phone else None
    return {
        "status": fields.get("status", "active"),
        "organisation": f"Shop {number}",
        "email": email,
        "email_key": signer.key("email", email),
        "phone": phone,
        "phone_key": signer.key("sms", phone) if phone else None,
        "phone_confirmed_at": NOW if phone else None,
        "language": fields.get("language", "en"),
        "region": "BE-VAN",
        "sector": "retail",
        "size_band": "2-9",
        "families": fields.get("families", ["fortinet-fortigate"]),
        "knows_products": True,
        "urgent_email": fields.get("urgent_email", True),
        "urgent_sms": bool(phone),
        "newsletter": fields.get("newsletter", "weekly"),
        "source": "import",
        "created_at": NOW,
        "updated_at": NOW,
        "confirmed_at": NOW,
        "link_key": f"key{number}",
        "sms_optout_code": f"opt{number}",
        "sms_code_attempts": 0,
    }


def add_alert(database, tier: str = "urgent", status: str = APPROVED, **fields) -> int:
    with database.session() as session:
        alert = Alert(
            tier=tier,
            status=status,
            texts=fields.get("texts", TEXTS),
            targeting=fields.get("targeting", {"families": ["fortinet-fortigate"]}),
            cves=["CVE-2026-10001"],
            known_exploited=True,
            links=[["Fortinet PSIRT", "https://www.fortiguard.com/psirt"]],
            firms=fields.get("firms", []),
            created_at=NOW,
            updated_at=NOW,
            approved_at=NOW if status in (APPROVED, "sending", "sent") else None,
        )
        session.add(alert)
        session.flush()
        return alert.id
