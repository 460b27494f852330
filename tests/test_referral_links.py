"""The referral redirect and a firm's own page: the redirect goes only to the registered
website and counts a click (counts only); broken, forged and foreign links count nothing;
a firm that is no longer listed is said so. A firm sees its numbers and asks for
corrections, which administrators review."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import inspect, select

from alerts.referrals import directory
from alerts.referrals.links import firm_link, referral_url
from alerts.referrals.models import CorrectionRequest, Firm, ReferralCount
from alerts.referrals.validation import parse_firm
from alerts.staff import accounts
from alerts.staff.models import AuditEvent
from tests.delivery_setup import add_alert
from tests.subscriber_site import CSRF, Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 10:00 in Brussels
TODAY = date(2026, 11, 27)
GOOD = "correct horse battery staple"
NUMBERS = ("0123.456.749", "0200.065.765")
WEBSITE = "https://www.firm0.example/help?from=alerts"


@pytest.fixture
def site(settings, database, monkeypatch):
    monkeypatch.setattr("alerts.referrals.web.utcnow", lambda: NOW)
    return Site(settings, database)


def _firm(database, number: int = 0, **changes) -> int:
    values = {
        "name": f"Secure Firm {number}",
        "enterprise_number": NUMBERS[number],
        "website": WEBSITE if number == 0 else f"https://firm{number}.example",
        "email": f"help@firm{number}.example",
        "phone": "+3225418111",
        "regions": "BE-VAN",
        "languages": "en;nl",
        "specialities": "incident-response",
        "status": "vetted",
        "vetted_on": (TODAY - timedelta(days=10)).isoformat(),
        "expires_on": (TODAY + timedelta(days=200)).isoformat(),
    } | changes
    with database.session() as session:
        return directory.add(session, parse_firm(values), None, NOW).id


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _referral(site: Site, alert_id: int, firm_id: int) -> str:
    return _path(
        referral_url(site.settings.public_base_url, site.service.signer, alert_id, firm_id)
    )


def _view(site: Site, firm_id: int) -> str:
    with site.database.session() as session:
        firm = session.get(Firm, firm_id)
    return _path(firm_link(site.settings.public_base_url, site.service.signer, firm))


def _counts(database) -> list[tuple]:
    with database.session() as session:
        rows = session.scalars(select(ReferralCount).order_by(ReferralCount.firm_id))
        return [(r.firm_id, r.alert_id, r.day, r.shown, r.shown_first, r.clicks) for r in rows]


def _events(database, action: str) -> list[AuditEvent]:
    with database.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def _corrections(database) -> list[CorrectionRequest]:
    with database.session() as session:
        return list(session.scalars(select(CorrectionRequest).order_by(CorrectionRequest.id)))


def _login(site: Site, role: str) -> str:
    email = f"{role}@gov.example"
    with site.database.session() as session:
        accounts.add(session, email, role.title(), role, GOOD, NOW)
    token = CSRF.search(site.client.get("/staff/login").text).group(1)
    data = {"csrf_token": token, "email": email, "password": GOOD, "next": ""}
    assert site.client.post("/staff/login", data=data).status_code == 303
    return email


def _visible(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- the redirect ------------------------------------------------------------------------------


def test_the_redirect_goes_exactly_to_the_website_and_counts_each_visit(site, database):
    firm, alert = _firm(database), add_alert(database)
    for _ in range(2):
        answer = site.browser().get(_referral(site, alert, firm))
        assert answer.status_code == 303
        assert answer.headers["location"] == WEBSITE
        assert "set-cookie" not in answer.headers
        assert answer.headers["cache-control"] == "no-store"
    assert _counts(database) == [(firm, alert, "2026-11-27", 0, 0, 2)]


def test_only_counts_are_stored_never_who_clicked(database):
    columns = {column["name"] for column in inspect(database.engine).get_columns("referral_counts")}
    assert columns == {"firm_id", "alert_id", "day", "shown", "shown_first", "clicks"}


@pytest.mark.parametrize(
    "query",
    ["?next=https://evil.example", "?url=https://evil.example&redirect=//evil.example", "?lang=fr"],
)
def test_nothing_in_the_request_changes_the_target(site, database, query):
    firm, alert = _firm(database), add_alert(database)
    answer = site.client.get(_referral(site, alert, firm) + query, headers={"referer": "x"})
    assert answer.headers["location"] == WEBSITE


def test_forged_foreign_and_unknown_links_are_not_found_and_count_nothing(site, database):
    firm, other, alert = _firm(database), _firm(database, 1), add_alert(database)
    signer = site.service.signer
    good = _referral(site, alert, firm)
    swapped = good.replace(f"/r/{alert}.{firm}.", f"/r/{alert}.{other}.")
    assert swapped != good
    bad = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # a changed signature
        swapped,  # another firm's id under this link's signature
        f"/r/{signer.seal('preferences', str(alert), str(firm))}",  # another purpose
        f"/r/{site.service.links.preferences_token(firm, 'key')}",
        f"/r/{signer.seal('firm-view', str(alert), str(firm))}",
        _referral(site, alert, 999),  # a genuine link to a firm that does not exist
        _referral(site, 999, firm),  # ... to an alert that does not exist
        f"/r/{signer.seal('referral', str(alert), str(firm), 'x')}",
        f"/r/{signer.seal('referral', str(alert), '-1')}",
        "/r/nonsense",
    ]
    for path in bad:
        answer = site.client.get(path)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
        assert 'href="/firms' in answer.text
    assert _counts(database) == []


@pytest.mark.parametrize("state", ["expired", "suspended", "ended-not-yet-expired"])
def test_a_firm_no_longer_listed_is_gone(site, database, state):
    firm_id, alert = _firm(database), add_alert(database)
    with database.session() as session:
        firm = session.get(Firm, firm_id)
        if state == "expired":
            firm.expires_on = TODAY
            directory.expire_due(session, NOW)
        elif state == "suspended":
            directory.suspend(session, firm, "complaint being checked", None, NOW)
        else:  # the daily job has not run yet: the date alone takes it off the list
            firm.expires_on = TODAY
    answer = site.client.get(_referral(site, alert, firm_id))
    assert answer.status_code == 410
    assert "location" not in answer.headers
    assert "no longer listed" in answer.text and 'href="/firms?lang=en"' in answer.text
    assert _counts(database) == []


def test_a_firm_not_vetted_yet_is_not_found(site, database):
    firm, alert = (
        _firm(database, status="pending", vetted_on="", expires_on=""),
        add_alert(database),
    )
    assert site.client.get(_referral(site, alert, firm)).status_code == 404
    assert _counts(database) == []


# --- the firm's own page -----------------------------------------------------------------------


def test_a_firm_sees_its_listing_and_its_numbers(site, database):
    firm, other, alert = _firm(database), _firm(database, 1), add_alert(database)
    old_alert = add_alert(database)
    with database.session() as session:
        directory.count(session, alert, NOW, shown={firm: 3, other: 50}, first={firm: 1})
        directory.count(session, old_alert, NOW - timedelta(days=120), shown={firm: 7})
    site.client.get(_referral(site, alert, firm))
    page = site.client.get(_view(site, firm))
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = _visible(page.text)
    assert "Secure Firm 0" in text and "0123.456.749" in text and WEBSITE in text
    assert "Vetted: listed" in text and "Vetted on 2026-11-17" in text
    assert "Vetting expires on 2027-06-15" in text
    totals = _visible(re.search(r'<table id="totals">.*?</table>', page.text, re.S).group(0))
    assert totals.endswith("10 1 1")  # all time: shown 3 + 7, first 1, one click
    rows = _visible(re.search(r'<table id="per-alert">.*?</table>', page.text, re.S).group(0))
    assert "FortiGate SSL-VPN flaw exploited 2026-11-27 3 1 1" in rows
    assert rows.count("2026-") == 1  # the alert of 120 days ago is not in the last 90 days
    assert "50" not in totals + rows  # another firm's numbers never show


def test_a_new_link_key_retires_the_old_self_view_link(site, database):
    firm_id = _firm(database)
    old = _view(site, firm_id)
    assert site.client.get(old).status_code == 200
    with database.session() as session:
        session.get(Firm, firm_id).link_key = "a-new-link-key-1"
    assert site.client.get(old).status_code == 404
    assert site.client.get(old + "/correction").status_code == 405
    assert (
        site.submit(old + "/correction", {"text": "x" * 20}, page=_view(site, firm_id)).status_code
        == 404
    )
    assert site.client.get(_view(site, firm_id)).status_code == 200
    assert _corrections(database) == []


def test_self_view_links_of_other_purposes_are_refused(site, database):
    firm_id = _firm(database)
    with database.session() as session:
        key = session.get(Firm, firm_id).link_key
    preference = site.service.links.preferences_token(firm_id, key)
    assert site.client.get(f"/firm/{preference}").status_code == 404
    assert site.client.get("/firm/1.abc.def").status_code == 404


def test_a_correction_request_is_stored_audited_and_thanked(site, database):
    firm = _firm(database)
    view = _view(site, firm)
    answer = site.submit(
        f"{view}/correction", {"text": "  Our phone is now +32 2 000 00 00.  "}, page=view
    )
    assert answer.status_code == 200
    assert "Thank you" in answer.text
    [stored] = _corrections(database)
    assert (stored.firm_id, stored.status, stored.text) == (
        firm,
        "open",
        "Our phone is now +32 2 000 00 00.",
    )
    [event] = _events(database, "firm-correction-requested")
    assert (event.subject, event.actor, event.actor_id) == (f"firm:{firm}", "system", None)
    assert event.detail == {"correction": stored.id}


def test_a_correction_request_needs_the_form_token(site, database):
    view = _view(site, _firm(database))
    answer = site.browser().post(f"{view}/correction", data={"text": "a forged correction"})
    assert answer.status_code == 403
    site.client.get(view)  # the CSRF cookie, but no token in the form
    assert site.client.post(f"{view}/correction", data={"text": "x" * 20}).status_code == 403
    assert _corrections(database) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("too short", "at least 10 characters"),
        ("x" * 2001, "at most 2000 characters"),
        ("", "at least 10"),
    ],
)
def test_a_correction_too_short_or_too_long_is_refused_with_the_reason(
    site, database, text, reason
):
    view = _view(site, _firm(database))
    answer = site.submit(f"{view}/correction", {"text": text}, page=view)
    assert answer.status_code == 422
    assert reason in answer.text
    assert _corrections(database) == []


def test_corrections_of_exactly_the_limits_are_accepted(site, database):
    view = _view(site, _firm(database))
    for text in ("x" * 10, "y" * 2000):
        assert site.submit(f"{view}/correction", {"text": text}, page=view).status_code == 200
    assert [len(c.text) for c in _corrections(database)] == [10, 2000]


def test_a_firm_cannot_pile_up_open_requests(site, database):
    view = _view(site, _firm(database))
    for number in range(5):
        answer = site.submit(f"{view}/correction", {"text": f"correction {number}"}, page=view)
        assert answer.status_code == 200
    answer = site.submit(f"{view}/correction", {"text": "one more correction"}, page=view)
    assert answer.status_code == 422 and "waiting" in answer.text
    assert len(_corrections(database)) == 5


# --- staff -------------------------------------------------------------------------------------


def _request_correction(
    site: Site, firm: int, text: str = "Please add BE-VWV to our regions."
) -> int:
    view = _view(site, firm)
    assert (
        site.submit(
            f"{view}/correction", {"text": text}, page=view, client=site.browser()
        ).status_code
        == 200
    )
    return _corrections(site.database)[-1].id


def test_the_corrections_page_is_for_administrators(site, database):
    assert site.client.get("/staff/corrections").headers["location"].startswith("/staff/login")
    _login(site, "editor")
    assert site.client.get("/staff/corrections").status_code == 403
    assert site.client.get(f"/staff/firms/{_firm(database)}/link").status_code == 403


def test_an_administrator_marks_a_request_done_and_it_is_audited(site, database):
    firm = _firm(database)
    done = _request_correction(site, firm, "<script>alert(1)</script> new phone")
    refused = _request_correction(site, firm, "Please list us as the best firm.")
    admin = _login(site, "admin")
    page = site.client.get("/staff/corrections")
    assert page.status_code == 200
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert "Please list us as the best firm." in page.text

    answer = site.submit(f"/staff/corrections/{done}/done", {}, page="/staff/corrections")
    assert answer.status_code == 303
    answer = site.submit(
        f"/staff/corrections/{refused}/refuse",
        {"note": "not  a correction"},
        page="/staff/corrections",
    )
    assert answer.status_code == 303
    stored = {c.id: c for c in _corrections(database)}
    assert (stored[done].status, stored[done].reviewed_by) == ("done", admin)
    assert stored[done].reviewed_at is not None
    assert (stored[refused].status, stored[refused].detail) == (
        "refused",
        {"note": "not a correction"},
    )
    [event] = _events(database, "firm-correction-done")
    assert (event.actor, event.subject, event.detail["correction"]) == (admin, f"firm:{firm}", done)
    assert len(_events(database, "firm-correction-refused")) == 1
    assert "No correction request is open" in site.client.get("/staff/corrections").text

    again = site.submit(f"/staff/corrections/{done}/refuse", {}, page="/staff/corrections")
    assert again.status_code == 409
    assert (
        site.client.post(f"/staff/corrections/{done}/done", data={}).status_code == 403
    )  # no token


def test_an_administrator_gets_the_self_view_link_to_send(site, database):
    firm = _firm(database)
    _login(site, "admin")
    page = site.client.get(f"/staff/firms/{firm}/link")
    assert page.status_code == 200
    link = re.search(r'<code class="secret" id="link">([^<]+)</code>', page.text).group(1)
    assert link.startswith(site.settings.public_base_url.rstrip("/") + "/firm/")
    assert "Secure Firm 0" in site.browser().get(_path(unescape(link))).text
    assert site.client.get("/staff/firms/999/link").status_code == 404
