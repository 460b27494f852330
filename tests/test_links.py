"""The links in every message: the fast paths give exactly the tokens and URLs of the plain
ones, and of every link sent before them."""

from __future__ import annotations

import base64
import hmac

import pytest

from subscribers.links import Links
from subscribers.tokens import PREFERENCES, UNSUBSCRIBE, Signer, TokenError

SECRET = "golden-signing-key-0123456789"


def reference_seal(secret: str, purpose: str, *parts: str) -> str:
    """The token as first specified: HMAC-SHA256 of "purpose:body", 16 bytes, base64url."""
    body = ".".join(parts)
    digest = hmac.digest(secret.encode(), f"{purpose}:{body}".encode(), "sha256")
    return f"{body}.{base64.urlsafe_b64encode(digest[:16]).rstrip(b'=').decode()}"


def test_tokens_already_sent_still_match():
    signer = Signer(SECRET)
    assert signer.seal(PREFERENCES, "42", "key42") == "42.key42.oDuu8vu6Nmpi6crH-c9Ulw"
    assert signer.seal(UNSUBSCRIBE, "42", "all") == "42.all.JGo1Ru1RgKclnKw8JJq_lA"
    assert signer.seal(UNSUBSCRIBE, "1234567", "sms") == "1234567.sms.G1gZxHIw67XJhv05myaKQQ"


@pytest.mark.parametrize("secret", [SECRET, "k" * 64, "long-" * 40])
def test_seal_and_sealer_are_hmac_sha256_for_many_ids(secret):
    signer = Signer(secret)
    seal_preferences, seal_unsubscribe = signer.sealer(PREFERENCES), signer.sealer(UNSUBSCRIBE)
    for number in [*range(0, 3000, 7), 10**9, 2**62]:
        key = f"k{number:011d}-_x"
        expected = reference_seal(secret, PREFERENCES, str(number), key)
        assert signer.seal(PREFERENCES, str(number), key) == expected
        assert seal_preferences(f"{number}.{key}") == expected
        expected = reference_seal(secret, UNSUBSCRIBE, str(number), "all")
        assert signer.seal(UNSUBSCRIBE, str(number), "all") == expected
        assert seal_unsubscribe(f"{number}.all") == expected
        assert signer.unseal(UNSUBSCRIBE, expected) == [str(number), "all"]


def test_any_number_of_purposes_seals_correctly():
    """Prepared purpose states are kept for a few dozen; beyond, each is prepared anew."""
    signer = Signer(SECRET)
    for round_ in range(2):
        for index in range(100):
            purpose = f"purpose-{index}"
            token = signer.seal(purpose, "7", "all")
            assert token == reference_seal(SECRET, purpose, "7", "all"), (round_, index)
            assert signer.unseal(purpose, token) == ["7", "all"]
            with pytest.raises(TokenError):
                signer.unseal(f"purpose-{index + 1}", token)


@pytest.mark.parametrize("base", ["https://alerts.example", "https://alerts.example/sub/"])
def test_message_links_are_the_plain_links(base):
    links = Links(base, Signer(SECRET))
    for number in [*range(1, 5000, 13), 987_654_321]:
        key = f"key{number}"
        preferences, unsubscribe, headers = links.message_links(number, key)
        assert preferences == links.preferences(number, key)
        assert unsubscribe == links.unsubscribe(number)
        assert headers == links.unsubscribe_headers(number)
        assert list(headers) == ["List-Unsubscribe", "List-Unsubscribe-Post"]
        assert preferences == f"{base.rstrip('/')}/preferences/" + reference_seal(
            SECRET, PREFERENCES, str(number), key
        )


def test_message_links_give_each_recipient_their_own_headers():
    links = Links("https://alerts.example", Signer(SECRET))
    first, second = links.message_links(1, "a")[2], links.message_links(2, "b")[2]
    assert first is not second and first != second
