"""Composition: an approved alert becomes an email and an SMS per language, and approved
alerts become a newsletter. Pure functions: no database, no network.

    content   the data shapes (AlertContent in; ComposedEmail / ComposedSms out) and which
              language version is used (the subscriber's, else English with fallback=True)
    views     alerts and firms as the templates see them (paragraphs, dates, safe links)
    mail      compose_email, compose_newsletter (templates/email/alert, email/newsletter)
    sms       compose_sms, sms_report (templates/sms/alert.txt)
    gsm       sms_segments, to_gsm7: GSM-7 / UCS-2 encoding and segment counts
"""

from alerts.compose.content import (
    PLACEHOLDERS,
    AlertContent,
    AlertText,
    ComposedEmail,
    ComposedSms,
    Firm,
    MissingText,
    RecipientLinks,
    missing_languages,
)
from alerts.compose.gsm import SegmentCount, sms_segments, to_gsm7
from alerts.compose.mail import compose_email, compose_newsletter
from alerts.compose.sms import compose_sms, sms_previews, sms_report

__all__ = [
    "PLACEHOLDERS",
    "AlertContent",
    "AlertText",
    "ComposedEmail",
    "ComposedSms",
    "Firm",
    "MissingText",
    "RecipientLinks",
    "SegmentCount",
    "compose_email",
    "compose_newsletter",
    "compose_sms",
    "missing_languages",
    "sms_previews",
    "sms_report",
    "sms_segments",
    "to_gsm7",
]
