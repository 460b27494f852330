"""Message channels: one small class per provider, each with `send(message) -> reference`
that raises SendError(permanent=...) on failure, and a registry keyed by the settings."""

from alerts.delivery.channels.base import BatchRecipient, EmailChannel, SendError, SmsChannel
from alerts.delivery.channels.files import FileEmailChannel, FileSmsChannel
from alerts.delivery.channels.registry import (
    EMAIL_CHANNELS,
    SMS_CHANNELS,
    email_channel,
    sms_channel,
)
from alerts.delivery.channels.sendgrid_email import SendGridChannel
from alerts.delivery.channels.twilio_sms import TwilioSmsChannel

__all__ = [
    "BatchRecipient",
    "EMAIL_CHANNELS",
    "SMS_CHANNELS",
    "EmailChannel",
    "FileEmailChannel",
    "FileSmsChannel",
    "SendError",
    "SendGridChannel",
    "SmsChannel",
    "TwilioSmsChannel",
    "email_channel",
    "sms_channel",
]
