"""A firm record as staff or an import file give it, checked field by field: every error
named, nothing stored unless all of it is right. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from alerts.referrals.models import SPECIALITIES, STATUSES
from alerts.templating import LANGUAGES
from subscribers import options
from subscribers.validation import as_bool, enterprise_number, normalise_email

MAX_LIST = 20


@dataclass(frozen=True)
class FirmRecord:
    name: str
    enterprise_number: str
    website: str
    email: str
    phone: str
    regions: list[str]
    languages: list[str]
    specialities: list[str]
    certifications: list[str]
    kmo_portefeuille: bool
    status: str
    vetted_on: date | None
    expires_on: date | None
    notes: str


class FirmErrors(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{name}: {text}" for name, text in errors.items()))
        self.errors = errors


def parse_firm(data: Mapping[str, Any]) -> FirmRecord:
    """Lists may come as lists or as text separated by commas or semicolons."""
    errors: dict[str, str] = {}

    def field(name: str, check):
        try:
            return check(data.get(name))
        except (ValueError, PydanticCustomError) as error:
            errors[name] = _text(error)
            return None

    record = {
        "name": field("name", lambda v: _required(v, 200)),
        "enterprise_number": field("enterprise_number", enterprise_number),
        "website": field("website", _website),
        "email": field("email", lambda v: normalise_email(str(v or ""))),
        "phone": field("phone", _phone),
        "regions": field("regions", lambda v: _choices(v, options.codes("regions"), True)),
        "languages": field("languages", lambda v: _choices(v, frozenset(LANGUAGES), True)),
        "specialities": field("specialities", lambda v: _choices(v, frozenset(SPECIALITIES), True)),
        "certifications": field("certifications", lambda v: [c[:80] for c in _items(v)]),
        "kmo_portefeuille": as_bool(data.get("kmo_portefeuille")),
        "status": field("status", _status),
        "vetted_on": field("vetted_on", _date),
        "expires_on": field("expires_on", _date),
        "notes": str(data.get("notes") or "")[:2000],
    }
    if not errors and record["status"] == "vetted" and not record["expires_on"]:
        errors["expires_on"] = "a vetted firm needs an expiry date"
    vetted, expires = record["vetted_on"], record["expires_on"]
    if not errors and vetted and expires and expires <= vetted:
        errors["expires_on"] = "the expiry date must come after the vetting date"
    if errors:
        raise FirmErrors(errors)
    return FirmRecord(**record)


def _text(error: Exception) -> str:
    if isinstance(error, PydanticCustomError):
        return error.message()
    return str(error)


def _required(value: Any, limit: int) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise ValueError("required")
    if len(text) > limit:
        raise ValueError(f"at most {limit} characters")
    return text


def _website(value: Any) -> str:
    url = str(value or "").strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or "." not in parts.hostname:
        raise ValueError("an https:// address, like https://www.example.be")
    if len(url) > 300 or parts.username or parts.password or " " in url:
        raise ValueError("an https:// address, like https://www.example.be")
    return url


def _phone(value: Any) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(str(value or "").strip()[:40], "BE")
    except phonenumbers.NumberParseException:
        raise ValueError("a phone number, like +32 2 511 22 33") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("a phone number, like +32 2 511 22 33")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _items(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
    else:
        items = str(value or "").replace(";", ",").split(",")
    items = [" ".join(item.split()) for item in items if item.strip()]
    if len(items) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} values")
    return list(dict.fromkeys(items))


def _choices(value: Any, allowed: frozenset[str], required: bool) -> list[str]:
    items = _items(value)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ValueError(f"unknown: {', '.join(unknown[:5])}; use {', '.join(sorted(allowed))}")
    if required and not items:
        raise ValueError("choose at least one")
    return items


def _status(value: Any) -> str:
    status = str(value or "pending").strip().lower()
    if status not in STATUSES:
        raise ValueError(f"one of {', '.join(STATUSES)}")
    return status


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError("a date as YYYY-MM-DD") from None
