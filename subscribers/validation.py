"""What a sign-up (or a preference change, or an imported row) must look like. Pure.

Every problem becomes an error keyed by its field with a message id (English) that the
pages translate, so the form can show it next to the field and nothing invalid is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from alerts.templating import LANGUAGES, N_
from subscribers.options import NEWSLETTER, codes

# Where SMEs we serve have their phones; also keeps SMS pumping to premium ranges out.
SMS_COUNTRIES = frozenset({"BE", "NL", "FR", "DE", "LU"})
BOOLEAN_FIELDS = ("knows_products", "urgent_email", "urgent_sms", "consent")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def _problem(message: str, **params: Any) -> PydanticCustomError:
    """The message id travels in the context: pydantic formats `msg`, but the page needs
    the id to translate it before filling in the parameters."""
    return PydanticCustomError("invalid", message, params | {"message_id": message})


class Profile(BaseModel):
    """A subscription's choices, valid and normalised (E.164 phone, KBO as 10 digits)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    organisation: str
    enterprise_number: str | None = None
    email: str
    phone: str | None = None
    language: str
    region: str
    sector: str
    size_band: str
    families: tuple[str, ...] = ()
    knows_products: bool = True
    urgent_email: bool = False
    urgent_sms: bool = False
    newsletter: str = "none"

    @field_validator("organisation")
    @classmethod
    def _organisation(cls, value: str) -> str:
        value = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", value)).split())
        if len(value) < 2:
            raise _problem("Enter the name of your organisation.")
        if len(value) > 200:
            raise _problem("Use at most {limit} characters.", limit=200)
        return value

    @field_validator("enterprise_number", mode="before")
    @classmethod
    def _enterprise_number(cls, value: Any) -> str | None:
        return enterprise_number(value) if value not in (None, "") else None

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str:
        return normalise_email(str(value or ""))

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> str | None:
        return mobile_number(str(value)) if value not in (None, "") else None

    @field_validator("language", "region", "sector", "size_band", "newsletter", mode="before")
    @classmethod
    def _choice(cls, value: Any, info: ValidationInfo) -> str:
        allowed = _ALLOWED[info.field_name]()
        if value in (None, ""):
            raise _problem("Choose one of the options.")
        if str(value) not in allowed:
            raise _problem("Choose one of the options.")
        return str(value)

    @field_validator("families", mode="before")
    @classmethod
    def _families(cls, value: Any, info: ValidationInfo) -> tuple[str, ...]:
        chosen = [value] if isinstance(value, str) else list(value or [])
        offered = (info.context or {}).get("families")
        unknown = [f for f in chosen if offered is not None and f not in offered]
        if unknown or len(chosen) > 200:
            raise _problem("Choose products from the list.")
        return tuple(sorted(set(chosen)))

    @field_validator(*BOOLEAN_FIELDS[:3], mode="before")
    @classmethod
    def _boolean(cls, value: Any) -> bool:
        return as_bool(value)


_ALLOWED = {
    "language": lambda: frozenset(LANGUAGES),
    "region": lambda: codes("regions"),
    "sector": lambda: codes("sectors"),
    "size_band": lambda: codes("size_bands"),
    "newsletter": lambda: frozenset(NEWSLETTER),
}


class ProfileErrors(Exception):
    """field -> (message id, parameters), in form order."""

    def __init__(self, errors: dict[str, tuple[str, dict[str, Any]]]):
        super().__init__("; ".join(f"{field}: {message}" for field, (message, _) in errors.items()))
        self.errors = errors


def parse_profile(
    data: Mapping[str, Any], offered_families: frozenset[str] | None, require_consent: bool
) -> Profile:
    """A valid Profile from form fields, or ProfileErrors naming every field at fault."""
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    try:
        profile = Profile.model_validate(dict(data), context={"families": offered_families})
    except ValidationError as error:
        profile = None
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "form"
            errors.setdefault(field, _message(problem))
    if profile is not None:
        errors |= _choice_errors(profile)
    if require_consent and not as_bool(data.get("consent")):
        errors["consent"] = (N_("Tick the box to agree to the privacy notice."), {})
    if errors:
        raise ProfileErrors(errors)
    return profile


def _choice_errors(profile: Profile) -> dict[str, tuple[str, dict[str, Any]]]:
    """Rules across fields: something to receive, a number for SMS, products or 'I don't know'."""
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if profile.urgent_sms and not profile.phone:
        errors["phone"] = (N_("Enter a mobile number to receive SMS alerts."), {})
    if not (profile.urgent_email or profile.urgent_sms or profile.newsletter != "none"):
        errors["channels"] = (N_("Choose at least one way to receive alerts."), {})
    if profile.knows_products and not profile.families:
        errors["families"] = (N_("Choose what you run, or tick “I don't know”."), {})
    return errors


def _message(problem: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if problem["type"] == "invalid":
        params = dict(problem.get("ctx") or {})
        return params.pop("message_id", problem["msg"]), params
    if problem["type"] == "missing":
        return N_("This field is required."), {}
    if problem["type"] == "string_type":
        return N_("Enter text."), {}
    return N_("This value is not valid."), {}


def normalise_email(value: str) -> str:
    value = value.strip()
    if not value:
        raise _problem("Enter your email address.")
    if len(value) > 254:
        raise _problem("Use at most {limit} characters.", limit=254)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _problem("Enter a valid email address, like name@company.be.") from None


def mobile_number(value: str) -> str:
    """E.164; a number without a country code is read as Belgian."""
    try:
        number = phonenumbers.parse(value.strip()[:40], "BE")
    except phonenumbers.NumberParseException:
        raise _problem("Enter a mobile number, like 0470 12 34 56 or +32 470 12 34 56.") from None
    if not phonenumbers.is_valid_number(number):
        raise _problem("Enter a mobile number, like 0470 12 34 56 or +32 470 12 34 56.")
    kind = phonenumbers.number_type(number)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, _FIXED_OR_MOBILE):
        raise _problem("This is not a mobile number: SMS alerts need a mobile phone.")
    if phonenumbers.region_code_for_number(number) not in SMS_COUNTRIES:
        raise _problem("We send SMS to Belgian, Dutch, French, German and Luxembourg numbers.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_FIXED_OR_MOBILE = phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE


def enterprise_number(value: Any) -> str:
    """A KBO/BCE enterprise number as 10 digits: 97 - (first 8 digits mod 97) is the check."""
    digits = re.sub(r"[\s.\-/]", "", str(value)).upper().removeprefix("BE")
    if len(digits) == 9:
        digits = "0" + digits  # numbers given before the leading 0 was added
    if not re.fullmatch(r"[01]\d{9}", digits):
        raise _problem("An enterprise number has 10 digits, like 0123.456.749.")
    if 97 - int(digits[:8]) % 97 != int(digits[8:]):
        raise _problem("This enterprise number is not valid (its check digits are wrong).")
    return digits


def format_enterprise_number(digits: str) -> str:
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in {"1", "true", "yes", "on", "y", "ja", "oui"}
