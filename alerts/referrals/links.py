"""The signed links of the directory: a referral link in a message (which alert, which
firm) and a firm's own view of its listing. Both are compact HMAC tokens scoped to their
purpose; neither carries a target address — the redirect always goes to the website the
firm registered."""

from __future__ import annotations

from alerts.referrals.models import Firm
from subscribers.tokens import Signer, TokenError

REFERRAL = "referral"  # [alert id, firm id]
FIRM_VIEW = "firm-view"  # [firm id, link key]: a new link key retires every earlier link


def referral_url(base_url: str, signer: Signer, alert_id: int, firm_id: int) -> str:
    token = signer.seal(REFERRAL, str(alert_id), str(firm_id))
    return f"{base_url.rstrip('/')}/r/{token}"


def firm_link(base_url: str, signer: Signer, firm: Firm) -> str:
    token = signer.seal(FIRM_VIEW, str(firm.id), firm.link_key)
    return f"{base_url.rstrip('/')}/firm/{token}"


def read_referral(signer: Signer, token: str) -> tuple[int, int]:
    """(alert id, firm id); TokenError when forged, broken or meant for something else."""
    alert_id, firm_id = _two(signer.unseal(REFERRAL, token))
    return _number(alert_id), _number(firm_id)


def read_firm_view(signer: Signer, token: str) -> tuple[int, str]:
    """(firm id, link key); the caller compares the key with the firm's current one."""
    firm_id, key = _two(signer.unseal(FIRM_VIEW, token))
    return _number(firm_id), key


def _two(parts: list[str]) -> tuple[str, str]:
    if len(parts) != 2:
        raise TokenError("this link is not valid")
    return parts[0], parts[1]


def _number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise TokenError("this link is not valid")
    return int(text)
