"""parse_firm: a firm record checked field by field, every error named."""

from __future__ import annotations

from datetime import date

import pytest

from alerts.referrals.validation import FirmErrors, parse_firm

GOOD = {
    "name": "  Cyber  Hulp BV ",
    "enterprise_number": "BE 0123.456.749",
    "website": "https://www.cyberhulp.be",
    "email": "Info@CyberHulp.be",
    "phone": "02 511 22 33",
    "regions": "BE-VAN; BE-BRU",
    "languages": ["nl", "fr"],
    "specialities": "incident-response,ransomware-recovery",
    "certifications": "ISO 27001; CyberFundamentals",
    "kmo_portefeuille": "yes",
    "status": "vetted",
    "vetted_on": "2026-01-10",
    "expires_on": "2027-01-10",
    "notes": "",
}


def errors_of(**changes) -> dict[str, str]:
    with pytest.raises(FirmErrors) as raised:
        parse_firm(GOOD | changes)
    return raised.value.errors


def test_a_good_record_is_normalised():
    record = parse_firm(GOOD)
    assert record.name == "Cyber Hulp BV"
    assert record.enterprise_number == "0123456749"
    assert record.phone == "+3225112233"
    assert record.regions == ["BE-VAN", "BE-BRU"]
    assert record.specialities == ["incident-response", "ransomware-recovery"]
    assert record.certifications == ["ISO 27001", "CyberFundamentals"]
    assert record.kmo_portefeuille is True
    assert (record.vetted_on, record.expires_on) == (date(2026, 1, 10), date(2027, 1, 10))


@pytest.mark.parametrize("number", ["0123.456.789", "0123.456.748", "12345", "2123.456.749"])
def test_enterprise_number_check_digits(number):
    assert "enterprise_number" in errors_of(enterprise_number=number)


@pytest.mark.parametrize(
    "website", ["http://www.cyberhulp.be", "www.cyberhulp.be", "https://localhost", "javascript:x"]
)
def test_website_must_be_https(website):
    assert errors_of(website=website)["website"].startswith("an https:// address")


@pytest.mark.parametrize("phone", ["123", "not a number", "+32 2 12"])
def test_phone(phone):
    assert "phone" in errors_of(phone=phone)


def test_unknown_choices_are_named():
    errors = errors_of(regions="BE-XXX", languages="es", specialities="hacking")
    assert "BE-XXX" in errors["regions"]
    assert "es" in errors["languages"]
    assert "hacking" in errors["specialities"]


def test_lists_are_required():
    errors = errors_of(regions="", languages=[], specialities="")
    assert set(errors) == {"regions", "languages", "specialities"}


def test_every_invalid_field_is_named_at_once():
    errors = errors_of(name="", email="nope", website="ftp://x.be", status="famous")
    assert set(errors) == {"name", "email", "website", "status"}


def test_vetted_without_expiry():
    assert errors_of(expires_on="")["expires_on"] == "a vetted firm needs an expiry date"


def test_a_pending_firm_needs_no_expiry():
    assert parse_firm(GOOD | {"status": "pending", "expires_on": ""}).expires_on is None


@pytest.mark.parametrize("expires", ["2026-01-10", "2025-12-31"])
def test_expiry_before_or_on_vetting(expires):
    message = errors_of(expires_on=expires)["expires_on"]
    assert message == "the expiry date must come after the vetting date"


def test_a_bad_date():
    assert errors_of(vetted_on="10/01/2026")["vetted_on"] == "a date as YYYY-MM-DD"
