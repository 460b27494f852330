"""Sign-up, double opt-in, SMS confirmation, preferences and unsubscribe, through the real
pages (FastAPI test client) on SQLite and PostgreSQL, with the file outbox as the channel."""

from __future__ import annotations

import re
import time
from email.header import decode_header, make_header
from unittest import mock

import pytest
from sqlalchemy import select

from subscribers.consent import Origin
from subscribers.models import ConsentEvent, Subscriber
from subscribers.suppressions import suppress
from tests.subscriber_site import SIGNUP, Site, text_part


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def _subscribers(site) -> list[Subscriber]:
    with site.database.session() as session:
        rows = list(session.scalars(select(Subscriber).order_by(Subscriber.id)))
        session.expunge_all()
    return rows


def _events(site) -> list[ConsentEvent]:
    with site.database.session() as session:
        rows = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
        session.expunge_all()
    return rows


def test_signup_confirm_and_sms_code(site):
    page = site.signup()
    assert page.status_code == 200 and "info@bakkerij-jansens.be" in page.text.lower()
    (pending,) = _subscribers(site)
    assert pending.status == "pending" and pending.phone == "+32470123456"
    assert pending.enterprise_number == "0123456749" and site.sms() == []
    (mail,) = site.emails()
    assert mail["To"] == "info@bakkerij-jansens.be" and "confirm" in text_part(mail)

    link = site.last_link()
    assert "Confirm" in site.client.get(link).text  # a button: opening the link is not enough
    assert _subscribers(site)[0].status == "pending"
    answer = site.confirm(link)
    assert answer.status_code == 303 and "/preferences/" in answer.headers["location"]
    assert _subscribers(site)[0].status == "active"

    preferences = answer.headers["location"].split("?")[0]
    wrong = site.submit(f"{preferences}/sms-code", {"code": "000000"}, page=preferences)
    assert wrong.status_code == 422 and _subscribers(site)[0].phone_confirmed_at is None
    right = site.submit(f"{preferences}/sms-code", {"code": site.last_sms_code()}, page=preferences)
    assert right.status_code == 303
    assert _subscribers(site)[0].phone_confirmed_at is not None
    kinds = [(e.kind, e.method) for e in _events(site)]
    assert kinds == [
        ("signup", "web-form"),
        ("email-confirmed", "email-link"),
        ("sms-confirmed", "preference-centre"),
    ]


def test_consent_records_notice_origin_and_channels(site):
    site.signup(client=site.browser(**{"user-agent": "TestBrowser/1.0"}))
    (event,) = _events(site)
    assert event.notice_version == "privacy-v1" and len(event.notice_sha256) == 64
    assert event.ip_address == "192.0.2.10" and event.user_agent == "TestBrowser/1.0"
    assert event.channels == {"urgent_email": True, "urgent_sms": True, "newsletter": "weekly"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("organisation", "", "Enter the name of your organisation."),
        ("organisation", "x" * 201, "Use at most 200 characters."),
        ("enterprise_number", "0123.456.789", "check digits are wrong"),
        ("enterprise_number", "12345", "10 digits"),
        ("email", "not-an-address", "Enter a valid email address"),
        ("email", "", "Enter your email address."),
        ("phone", "12", "Enter a mobile number"),
        ("phone", "02 511 11 11", "This is not a mobile number"),
        ("language", "es", "Choose one of the options."),
        ("region", "BE-XXX", "Choose one of the options."),
        ("sector", "", "Choose one of the options."),
        ("size_band", "huge", "Choose one of the options."),
        ("newsletter", "hourly", "Choose one of the options."),
        ("families", ["not-a-family"], "Choose products from the list."),
        ("families", [], "or tick"),
        ("consent", "", "Tick the box to agree"),
    ],
)
def test_invalid_field_is_shown_and_nothing_stored(site, field, value, message):
    page = site.signup(**{field: value})
    assert page.status_code == 422
    assert message in page.text
    assert f'id="{field}-error"' in page.text or field in ("families",)
    assert _subscribers(site) == [] and _events(site) == [] and site.emails() == []


def test_cross_field_rules(site):
    no_phone = site.signup(phone="", urgent_sms="1")
    assert "Enter a mobile number to receive SMS alerts." in no_phone.text
    nothing = site.signup(urgent_email="", urgent_sms="", newsletter="none")
    assert "Choose at least one way to receive alerts." in nothing.text
    assert _subscribers(site) == []


def test_dont_know_needs_no_products(site):
    assert site.signup(families=[], dont_know="1").status_code == 200
    (subscriber,) = _subscribers(site)
    assert subscriber.knows_products is False and subscriber.families == []


def test_form_without_csrf_token_is_refused(site):
    answer = site.client.post("/subscribe", data=SIGNUP)
    assert answer.status_code == 400 and _subscribers(site) == []


def test_confirmation_link_is_single_use(site):
    site.signup()
    link = site.last_link()
    assert site.confirm(link).status_code == 303
    again = site.confirm(link)
    assert again.status_code == 409 and "already used" in again.text


def test_confirmation_link_expires(site):
    site.signup()
    site.clock.advance(hours=site.settings.signup_confirm_hours + 1)
    expired = site.confirm()
    assert expired.status_code == 410 and _subscribers(site)[0].status == "pending"


def test_newer_link_replaces_older(site):
    site.signup()
    first = site.last_link()
    site.signup()
    assert site.confirm(first).status_code == 409
    assert site.confirm().status_code == 303


@pytest.mark.parametrize("mangle", [lambda t: t[:-3] + "abc", lambda t: "x" + t, lambda t: "."])
def test_tampered_link_is_refused(site, mangle):
    site.signup()
    prefix, token = site.last_link().rsplit("/", 1)
    assert site.confirm(f"{prefix}/{mangle(token)}").status_code == 404


def test_a_link_for_one_purpose_does_not_work_for_another(site):
    preferences = site.subscribe_and_confirm()
    token = preferences.rsplit("/", 1)[1]
    assert site.confirm(f"/confirm/{token}").status_code == 404
    assert site.client.post(f"/unsubscribe/{token}").status_code == 404


def test_same_address_twice_reveals_nothing_and_changes_nothing_until_confirmed(site):
    site.subscribe_and_confirm()
    fresh = site.browser()
    again = site.signup(client=fresh, organisation="Someone Else", sector="construction")
    new = site.signup(client=site.browser(), email="other@example.be")
    assert again.status_code == new.status_code == 200
    assert again.text.replace("info@bakkerij-jansens.be", "X") == new.text.replace(
        "other@example.be", "X"
    )
    subscriber = _subscribers(site)[0]
    assert subscriber.organisation == "Bakkerij Jansens" and subscriber.status == "active"
    assert "filled in our sign-up form again" in text_part(site.emails()[-2])
    site.confirm(_link_in(site.emails()[-2]))
    assert _subscribers(site)[0].organisation == "Someone Else"


def _link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/confirm/\S+)", text_part(message)).group(1)


def test_rate_limit_per_address(site):
    limit = site.settings.signup_limit_per_address
    answers = [site.signup(client=site.browser()).status_code for _ in range(limit + 1)]
    assert answers == [200] * limit + [429]
    site.clock.advance(hours=1)
    assert site.signup().status_code == 200


def test_rate_limit_per_client_address(settings, database):
    site = Site(settings.model_copy(update={"signup_limit_per_ip": 2}), database)
    answers = [site.signup(email=f"shop{i}@example.be").status_code for i in range(3)]
    assert answers == [200, 200, 429]
    assert len(_subscribers(site)) == 2


def test_preferences_change_everything_chosen_at_signup(site):
    preferences = site.subscribe_and_confirm()
    changed = SIGNUP | {
        "organisation": "Bakkerij Jansens & Zonen",
        "region": "BE-VOV",
        "language": "fr",
        "families": ["wordpress"],
        "urgent_sms": "",
        "newsletter": "daily",
    }
    changed.pop("consent")
    assert site.submit(preferences, changed).status_code == 303
    subscriber = _subscribers(site)[0]
    assert (subscriber.organisation, subscriber.region, subscriber.language) == (
        "Bakkerij Jansens & Zonen",
        "BE-VOV",
        "fr",
    )
    assert subscriber.families == ["wordpress"] and subscriber.newsletter == "daily"
    assert not subscriber.urgent_sms and _events(site)[-1].kind == "preferences"


def test_invalid_preference_change_keeps_the_old_choices(site):
    preferences = site.subscribe_and_confirm()
    answer = site.submit(preferences, SIGNUP | {"region": "nowhere"})
    assert answer.status_code == 422 and _subscribers(site)[0].region == "BE-VAN"


def test_email_change_waits_for_the_new_address(site):
    preferences = site.subscribe_and_confirm()
    site.submit(preferences, SIGNUP | {"email": "new@bakkerij.be"})
    assert _subscribers(site)[0].email == "info@bakkerij-jansens.be"
    assert site.emails()[-1]["To"] == "new@bakkerij.be"
    assert site.confirm(site.last_link("confirm-email")).status_code == 303
    assert _subscribers(site)[0].email == "new@bakkerij.be"


def test_new_phone_number_needs_a_new_code(site):
    preferences = site.subscribe_and_confirm()
    site.submit(f"{preferences}/sms-code", {"code": site.last_sms_code()}, page=preferences)
    site.submit(preferences, SIGNUP | {"phone": "+32 499 99 88 77"})
    subscriber = _subscribers(site)[0]
    assert subscriber.phone == "+32499998877" and subscriber.phone_confirmed_at is None
    assert site.sms()[-1]["to"] == "+32499998877"


def test_sms_code_attempts_are_limited_and_codes_expire(site):
    preferences = site.subscribe_and_confirm()
    code = site.last_sms_code()
    for _ in range(5):
        site.submit(f"{preferences}/sms-code", {"code": "999999"}, page=preferences)
    blocked = site.submit(f"{preferences}/sms-code", {"code": code}, page=preferences)
    assert blocked.status_code == 422 and "Too many" in blocked.text
    site.submit(f"{preferences}/sms-resend", page=preferences)
    site.clock.advance(minutes=11)
    late = site.submit(f"{preferences}/sms-code", {"code": site.last_sms_code()}, page=preferences)
    assert late.status_code == 422 and "expired" in late.text


def test_sms_code_resends_are_limited(site):
    preferences = site.subscribe_and_confirm()
    answers = [
        site.submit(f"{preferences}/sms-resend", page=preferences).status_code for _ in range(4)
    ]
    assert answers == [303, 303, 429, 429]
    assert len(site.sms()) == 3  # three codes an hour: the first one and two resends


def test_pause_resume_and_leave_one_channel(site):
    preferences = site.subscribe_and_confirm()
    site.submit(f"{preferences}/pause", page=preferences)
    assert _subscribers(site)[0].status == "paused"
    site.submit(f"{preferences}/resume", page=preferences)
    assert _subscribers(site)[0].status == "active"
    site.submit(f"{preferences}/leave", {"channel": "sms"}, page=preferences)
    subscriber = _subscribers(site)[0]
    assert subscriber.status == "active" and subscriber.urgent_email and not subscriber.urgent_sms


def test_one_click_unsubscribe_rfc8058(site):
    site.subscribe_and_confirm()
    subscriber_id = _subscribers(site)[0].id
    headers = site.service.links.unsubscribe_headers(subscriber_id)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = headers["List-Unsubscribe"].strip("<>").split("8000", 1)[1]

    assert "Unsubscribe" in site.browser().get(path).text  # GET only asks
    assert _subscribers(site)[0].status == "active"
    mail_client = site.browser()  # no cookie, no CSRF token, one request
    answer = mail_client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and _subscribers(site)[0].status == "left"
    assert _events(site)[-1].kind == "withdrawn" and _events(site)[-1].method == "one-click"
    assert mail_client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 200


def test_sms_optout_link_stops_sms_only(site):
    site.subscribe_and_confirm()
    code = _subscribers(site)[0].sms_optout_code
    link = site.service.links.sms_optout(code)
    assert len(link) < 60  # fits in a text message
    path = link.split("8000", 1)[1]
    assert site.browser().get(path).status_code == 200
    assert site.browser().post(path).status_code == 200
    subscriber = _subscribers(site)[0]
    assert not subscriber.urgent_sms and subscriber.urgent_email and subscriber.status == "active"
    assert site.browser().post("/s/unknown-code").status_code == 404


def test_no_sms_before_the_email_is_confirmed(site):
    site.signup()
    assert site.sms() == []


def test_pages_in_every_language(site):
    for language, word in (("nl", "Inschrijven"), ("fr", "S'abonner"), ("de", "Abonnieren")):
        page = site.browser().get(f"/subscribe?lang={language}")
        assert f'<html lang="{language}">' in page.text and word in page.text
    browser = site.browser(**{"accept-language": "de-BE,de;q=0.9,fr;q=0.8"})
    assert '<html lang="de">' in browser.get("/subscribe").text


def test_language_choice_sticks_in_a_cookie(site):
    browser = site.browser()
    browser.get("/subscribe?lang=fr")
    assert '<html lang="fr">' in browser.get("/subscribe").text


@pytest.mark.parametrize(
    "language, subject", [("nl", "Bevestig"), ("fr", "Confirmez"), ("de", "Bestätigen")]
)
def test_confirmation_email_in_the_chosen_language(site, language, subject):
    site.signup(language=language)
    (mail,) = site.emails()
    assert subject in str(make_header(decode_header(mail["Subject"])))
    assert site.last_link().startswith("/confirm/")


def test_confirm_page_shows_the_notice_and_the_ledger_records_it(site):
    site.signup()
    page = site.client.get(site.last_link() + "?lang=de")
    assert "Wir verwenden die hier angegebenen Daten" in page.text
    site.submit(site.last_link() + "?lang=de", page=site.last_link() + "?lang=de")
    confirmed = _events(site)[-1]
    assert confirmed.kind == "email-confirmed" and confirmed.notice_version == "privacy-v1"
    signup = _events(site)[0]
    assert signup.notice_sha256 != confirmed.notice_sha256  # English form, German page


def test_a_changed_notice_means_the_form_is_shown_again(site):
    answer = site.signup(notice_version="privacy-v0")
    assert answer.status_code == 400 and _subscribers(site) == []


def test_erased_subscribers_links_never_reach_a_newcomer(site):
    first = site.subscribe_and_confirm()
    first_id = _subscribers(site)[0].id
    unsubscribe = site.service.links.unsubscribe(first_id).split("8000", 1)[1]
    site.service.erase(first_id, Origin("staff-cli"))
    site.subscribe_and_confirm(email="newcomer@example.be", organisation="Newcomer")
    (newcomer,) = _subscribers(site)
    assert newcomer.id != first_id
    assert site.client.get(first).status_code == 404
    gone = site.browser().post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    assert gone.status_code == 200  # nothing left to unsubscribe: that is success
    assert _subscribers(site)[0].status == "active"


def test_an_address_change_retires_old_preference_links(site):
    old = site.subscribe_and_confirm()
    subscriber_id = _subscribers(site)[0].id
    unsubscribe = site.service.links.unsubscribe(subscriber_id).split("8000", 1)[1]
    site.submit(old, SIGNUP | {"email": "new@bakkerij.be"})
    moved = site.confirm(site.last_link("confirm-email"))
    assert site.client.get(old).status_code == 404
    assert site.client.get(moved.headers["location"]).status_code == 200
    assert site.browser().post(unsubscribe).status_code == 200  # old mails can still leave


def test_sms_codes_are_limited_across_preference_saves(site):
    preferences = site.subscribe_and_confirm()
    for number in ("+32 470 00 00 01", "+32 470 00 00 02", "+32 470 00 00 03"):
        assert site.submit(preferences, SIGNUP | {"phone": number}).status_code == 303
    assert len(site.sms()) == 3  # the first code and two new numbers; then no more
    assert _subscribers(site)[0].phone == "+32470000003"


def test_no_code_for_a_number_that_said_stop(site):
    with site.database.session() as session:
        suppress(
            session,
            site.service.signer,
            "sms",
            "+32470123456",
            "provider-unsubscribe",
            "twilio",
            site.clock(),
        )
    site.subscribe_and_confirm()
    assert site.sms() == []


def test_saving_after_leaving_subscribes_again(site):
    preferences = site.subscribe_and_confirm()
    site.submit(f"{preferences}/leave", {"channel": "all"}, page=preferences)
    assert _subscribers(site)[0].status == "left"
    assert "We do not sell or share them" in site.client.get(preferences).text  # the notice
    site.submit(preferences, SIGNUP)
    assert _subscribers(site)[0].status == "active"
    assert _events(site)[-1].notice_version == "privacy-v1"


def test_errors_are_translated_with_their_numbers(site):
    page = site.signup(
        client=site.browser(**{"accept-language": "nl"}), organisation="x" * 201, language="nl"
    )
    assert page.status_code == 422 and "200" in page.text
    assert "Use at most 200 characters." not in page.text


def test_export_and_erase_need_a_fresh_link_from_the_inbox(site):
    preferences = site.subscribe_and_confirm()
    assert site.client.get(f"{preferences}/export").status_code != 200
    site.submit(f"{preferences}/data-link", page=preferences)
    data_page = site.last_link("my-data")
    assert site.client.get(data_page).status_code == 200
    assert site.client.get(f"{data_page}/export").status_code == 200
    later = time.time() + 2 * 3600  # the link's age is in its signature: move real time
    with mock.patch("itsdangerous.timed.time.time", return_value=later):
        assert site.client.get(f"{data_page}/export").status_code == 410
