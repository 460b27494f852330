"""Which class serves each ALERTS_EMAIL_CHANNEL / ALERTS_SMS_CHANNEL value.

Adding a provider is one class with `from_settings` and `send`, plus one line here.
"""

from __future__ import annotations

from alerts.delivery.channels.base import EmailChannel, SmsChannel
from alerts.delivery.channels.files import FileEmailChannel, FileSmsChannel
from alerts.delivery.channels.sendgrid_email import SendGridChannel
from alerts.delivery.channels.twilio_sms import TwilioSmsChannel
from alerts.settings import Settings

EMAIL_CHANNELS: dict[str, type[EmailChannel]] = {
    FileEmailChannel.name: FileEmailChannel,
    SendGridChannel.name: SendGridChannel,
}
SMS_CHANNELS: dict[str, type[SmsChannel]] = {
    FileSmsChannel.name: FileSmsChannel,
    TwilioSmsChannel.name: TwilioSmsChannel,
}


def email_channel(settings: Settings) -> EmailChannel:
    """The email channel ALERTS_EMAIL_CHANNEL names, built from its settings."""
    return _pick(EMAIL_CHANNELS, settings.email_channel, "ALERTS_EMAIL_CHANNEL").from_settings(
        settings
    )


def sms_channel(settings: Settings) -> SmsChannel:
    """The SMS channel ALERTS_SMS_CHANNEL names, built from its settings."""
    return _pick(SMS_CHANNELS, settings.sms_channel, "ALERTS_SMS_CHANNEL").from_settings(settings)


def _pick(registry: dict, key: str, variable: str):
    if key not in registry:
        known = ", ".join(sorted(registry))
        raise ValueError(f"{variable}={key!r} is not a known channel (known: {known})")
    return registry[key]
