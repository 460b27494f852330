"""The messages the subscription itself sends: confirmation links and SMS codes.

Rendered from templates/email/subscription/ in the subscriber's language and handed to the
delivery layer's channels (file outbox by default, SendGrid / SMS provider in production)."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.delivery.messages import EmailMessage, SmsMessage
from alerts.templating import gettext, render


@dataclass(frozen=True)
class Recipient:
    """Plain values captured inside the transaction, so sending happens after commit."""

    subscriber_id: int
    email: str
    language: str
    organisation: str
    phone: str | None = None


class Notifier:
    def __init__(self, email_channel, sms_channel):
        self.email_channel = email_channel
        self.sms_channel = sms_channel

    def email(
        self, kind: str, to: Recipient, headers: dict[str, str] | None = None, **context
    ) -> str:
        """Send templates/email/subscription/{kind}.(subject.txt|txt|html)."""
        base = f"email/subscription/{kind}"
        context = {"recipient": to} | context
        message = EmailMessage(
            to=to.email,
            subject=render(f"{base}.subject.txt", to.language, **context).strip(),
            text=render(f"{base}.txt", to.language, **context),
            html=render(f"{base}.html", to.language, **context),
            headers=headers or {},
            category=f"subscription-{kind}",
            reference=f"subscriber-{to.subscriber_id}-{kind}",
        )
        return self.email_channel.send(message)

    def sms_code(self, to: Recipient, code: str) -> str:
        body = gettext(to.language, "Your SME alerts confirmation code: {code}", code=code)
        reference = f"subscriber-{to.subscriber_id}-sms-code"
        return self.sms_channel.send(SmsMessage(to=to.phone or "", body=body, reference=reference))
