"""SMS through Twilio's Messages API (or any service speaking it), with httpx.

Twilio's numeric error code is kept in the error text (21211: invalid number, 21610:
recipient opted out, ...) because it is what decides whether to suppress a number.
"""

from __future__ import annotations

import re

import httpx

from alerts import __version__
from alerts.delivery.channels.base import http_failure, network_failure, require, secret
from alerts.delivery.messages import SmsMessage
from alerts.settings import Settings


class TwilioSmsChannel:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = "https://api.twilio.com",
        sender: str = "",
        timeout: float = 20.0,
        status_callback: str | None = None,
    ) -> None:
        sid = require(account_sid, "ALERTS_TWILIO_ACCOUNT_SID", "twilio SMS")
        token = require(auth_token, "ALERTS_TWILIO_AUTH_TOKEN", "twilio SMS")
        self.sender = require(sender, "ALERTS_SMS_FROM", "twilio SMS")
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        self.timeout = timeout
        self.status_callback = status_callback
        self._auth = httpx.BasicAuth(sid, token)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSmsChannel:
        return cls(
            settings.twilio_account_sid,
            secret(settings.twilio_auth_token),
            settings.twilio_base_url,
            settings.twilio_messaging_service_sid or settings.sms_from,
            settings.http_timeout,
            # Delivery receipts (invalid numbers, opt-outs) come back to our webhook.
            status_callback=f"{settings.public_base_url.rstrip('/')}/webhooks/twilio",
        )

    def send(self, message: SmsMessage) -> str:
        """Returns Twilio's message sid ('' if an accepted answer lacked one)."""
        try:
            response = httpx.post(
                self.url,
                data=self._form(message),
                auth=self._auth,
                timeout=self.timeout,
                headers={"User-Agent": f"sme-alerts/{__version__}"},
            )
        except httpx.HTTPError as error:
            raise network_failure("twilio", error) from None
        if not response.is_success:
            retry_after = response.headers.get("Retry-After")
            raise http_failure("twilio", response.status_code, retry_after, _error_code(response))
        return _json(response).get("sid") or ""

    def _form(self, message: SmsMessage) -> dict[str, str]:
        form = {"To": message.to, "Body": message.body}
        # A messaging service (MG + 32 hex) picks the sender itself; else From is ours.
        if re.fullmatch(r"MG[0-9a-fA-F]{32}", self.sender):
            form["MessagingServiceSid"] = self.sender
        else:
            form["From"] = self.sender
        if self.status_callback:
            form["StatusCallback"] = self._callback_url(message.reference)
        return form

    def _callback_url(self, reference: str) -> str:
        """Twilio echoes only its own sid; our reference rides along in the callback URL."""
        url = httpx.URL(self.status_callback or "")
        return str(url.copy_merge_params({"reference": reference}) if reference else url)


def _error_code(response: httpx.Response) -> str:
    """Twilio's numeric code only: its message text quotes the phone number."""
    code = _json(response).get("code")
    return f"error {code}" if code else ""


def _json(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
