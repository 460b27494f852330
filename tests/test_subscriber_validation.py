"""The pure parts of subscribing: field validation, KBO check digits, phone numbers,
signed links and keyed hashes, Accept-Language negotiation."""

import base64
import hmac

import pytest

from alerts.templating import negotiate
from subscribers.service import _client_block
from subscribers.tokens import CONFIRM, PREFERENCES, Signer, TokenError, TokenExpired
from subscribers.validation import (
    ProfileErrors,
    enterprise_number,
    format_enterprise_number,
    mobile_number,
    normalise_email,
    parse_profile,
)

VALID = {
    "organisation": "  Garage   Peeters ",
    "email": "Info@Garage-Peeters.BE",
    "language": "nl",
    "region": "BE-VLI",
    "sector": "services",
    "size_band": "2-9",
    "families": ["wordpress"],
    "urgent_email": "1",
    "newsletter": "none",
}


@pytest.mark.parametrize(
    "given, expected",
    [
        ("0123.456.749", "0123456749"),
        ("BE 0123 456 749", "0123456749"),
        ("be0123456749", "0123456749"),
        ("123456749", "0123456749"),  # before the leading 0
        ("0403.170.701", "0403170701"),
    ],
)
def test_enterprise_number_forms(given, expected):
    assert enterprise_number(given) == expected


@pytest.mark.parametrize("given", ["0123.456.748", "2123456749", "01234567", "abc", "0123-456-74x"])
def test_enterprise_number_refused(given):
    with pytest.raises(ValueError):
        enterprise_number(given)


def test_enterprise_number_display():
    assert format_enterprise_number("0123456749") == "0123.456.749"


@pytest.mark.parametrize(
    "given, expected",
    [
        ("0470 12 34 56", "+32470123456"),
        ("+32 (0)470/12.34.56", "+32470123456"),
        ("0032470123456", "+32470123456"),
        ("+31 6 12345678", "+31612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_mobile_numbers_become_e164(given, expected):
    assert mobile_number(given) == expected


@pytest.mark.parametrize(
    "given", ["02 511 11 11", "+32 9 123 45 67", "0470", "hello", "+999", "+44 7700 900123"]
)
def test_not_a_mobile_number(given):
    with pytest.raises(ValueError):
        mobile_number(given)


def test_email_is_normalised_and_checked():
    assert normalise_email(" Info@Garage-Peeters.BE ") == "info@garage-peeters.be"
    for bad in ("no-at-sign", "a@b", "a@@b.be", "x" * 250 + "@b.be", "a b@c.be"):
        with pytest.raises(ValueError):
            normalise_email(bad)


def test_profile_is_normalised():
    profile = parse_profile(VALID, frozenset({"wordpress"}), require_consent=False)
    assert profile.organisation == "Garage Peeters"
    assert profile.email == "info@garage-peeters.be"
    assert profile.families == ("wordpress",) and profile.urgent_email and not profile.urgent_sms


def test_control_characters_are_removed_from_names():
    data = VALID | {"organisation": "Garage\u202e\x00 Peeters\n"}
    assert parse_profile(data, None, False).organisation == "Garage Peeters"


def test_every_problem_is_reported_at_once():
    data = VALID | {"email": "nope", "region": "", "families": ["x"], "phone": "1"}
    with pytest.raises(ProfileErrors) as caught:
        parse_profile(data, frozenset({"wordpress"}), require_consent=True)
    assert set(caught.value.errors) == {"email", "region", "families", "phone", "consent"}


def test_signed_links_are_bound_to_their_purpose_and_key():
    signer = Signer("k" * 32)
    token = signer.dumps(CONFIRM, [7, "nonce"])
    assert signer.loads(CONFIRM, token) == [7, "nonce"]
    with pytest.raises(TokenError):
        signer.loads(PREFERENCES, token)
    with pytest.raises(TokenError):
        Signer("other" * 8).loads(CONFIRM, token)
    with pytest.raises(TokenExpired):
        signer.loads(CONFIRM, token, max_age=-1)


def test_keyed_hashes_ignore_case_and_hide_the_address():
    signer = Signer("k" * 32)
    key = signer.key("email", "Info@Example.be")
    assert key == signer.key("email", "info@example.be ") and "example" not in key
    assert key != signer.key("sms", "info@example.be")
    with pytest.raises(ValueError):
        Signer("short")


@pytest.mark.parametrize(
    "header, expected",
    [
        ("fr-BE,fr;q=0.9,en;q=0.8", "fr"),
        ("en-GB;q=0.5, de;q=0.9", "de"),
        ("es-ES,es;q=0.9", "nl"),
        ("", "nl"),
        ("de;q=abc, fr", "fr"),
    ],
)
def test_language_negotiation(header, expected):
    assert negotiate(header) == expected


@pytest.mark.parametrize(
    "address, block",
    [
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same client, another address
        ("testclient", "testclient"),
    ],
)
def test_rate_limits_count_an_ipv6_client_per_64(address, block):
    assert _client_block(address) == block


def test_sealed_links_are_compact_and_tamper_proof():
    signer = Signer("k" * 32)
    token = signer.seal("preferences", "42", "abcDEF-_123")
    assert signer.unseal("preferences", token) == ["42", "abcDEF-_123"] and len(token) < 50
    for forged in (token.replace("42", "43", 1), token[:-1] + "A", "42.abc", ""):
        with pytest.raises(TokenError):
            signer.unseal("preferences", forged)
    with pytest.raises(TokenError):
        signer.unseal("unsubscribe", token)  # another purpose


@pytest.mark.parametrize("secret", ["k" * 16, "k" * 64, "long-" * 40])
def test_sealed_links_carry_a_standard_hmac_sha256(secret):
    """The precomputed-pad MAC is RFC 2104 HMAC-SHA256, for short and over-long keys alike,
    so links sent before the speed-up still open."""
    token = Signer(secret).seal("unsubscribe", "7", "all")
    digest = hmac.digest(secret.encode(), b"unsubscribe:7.all", "sha256")
    assert token == "7.all." + base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
