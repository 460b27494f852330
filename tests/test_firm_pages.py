"""The directory of security firms: the staff pages (roles, the record form with every
invalid field named, vetting and suspending audited, the expiring-soon warning) and the
public directory (only vetted, unexpired firms; filters; escaping), on both databases."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from alerts.referrals import directory
from alerts.referrals.models import Firm
from alerts.referrals.validation import parse_firm
from alerts.staff import accounts
from alerts.staff.models import AuditEvent
from tests.subscriber_site import CSRF, Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 10:00 in Brussels
TODAY = date(2026, 11, 27)
GOOD = "correct horse battery staple"
HOSTILE = "<script>alert('firm')</script> Security"


def number(n: int) -> str:
    """A valid enterprise number (its check digits right)."""
    base = f"0{n:07d}"
    return f"{base}{97 - int(base) % 97:02d}"


def firm_data(name: str, n: int, **changes) -> dict:
    data = {
        "name": name,
        "enterprise_number": number(n),
        "website": f"https://www.firm{n}.be",
        "email": f"info@firm{n}.be",
        "phone": "+32 2 511 22 33",
        "regions": ["BE-VAN"],
        "languages": ["nl"],
        "specialities": ["incident-response"],
        "certifications": ["ISO 27001"],
        "kmo_portefeuille": False,
        "status": "vetted",
        "expires_on": (TODAY + timedelta(days=200)).isoformat(),
    }
    return data | changes


def add_firm(database, name: str, n: int, **changes) -> int:
    with database.session() as session:
        return directory.add(session, parse_firm(firm_data(name, n, **changes)), None, NOW).id


@pytest.fixture
def site(settings, database, monkeypatch):
    import alerts.staff.firms
    import alerts.web.firms

    monkeypatch.setattr(alerts.staff.firms, "utcnow", lambda: NOW)
    monkeypatch.setattr(alerts.web.firms, "utcnow", lambda: NOW)
    return Site(settings, database)


def login(site: Site, role: str) -> str:
    email = f"{role}@example.be"
    with site.database.session() as session:
        user = accounts.add(session, email, role.title(), role, GOOD, NOW)
        user.must_change_password = False
    client = site.client
    token = CSRF.search(client.get("/staff/login").text).group(1)
    answer = client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": GOOD, "next": ""}
    )
    assert answer.status_code == 303, answer.text
    return email


def firm(site: Site, firm_id: int) -> Firm:
    with site.database.session() as session:
        row = session.get(Firm, firm_id)
        session.expunge(row)
        return row


def events(site: Site, firm_id: int) -> list[AuditEvent]:
    with site.database.session() as session:
        query = select(AuditEvent).where(AuditEvent.subject == f"firm:{firm_id}")
        rows = list(session.scalars(query.order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def count_firms(site: Site) -> int:
    with site.database.session() as session:
        return session.scalar(select(func.count()).select_from(Firm))


def form_fields(data: dict) -> dict:
    """A firm as the staff form posts it."""
    fields = dict(data)
    fields["kmo_portefeuille"] = "1" if data.get("kmo_portefeuille") else ""
    fields["certifications"] = "; ".join(data.get("certifications", []))
    return fields


# --- staff: roles ------------------------------------------------------------------------


def test_not_logged_in_goes_to_the_login_page(site):
    answer = site.client.get("/staff/firms")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/staff/login")


def test_an_editor_can_view_but_not_change(site):
    firm_id = add_firm(site.database, "Cyber Hulp", 1)
    login(site, "editor")
    listing = site.client.get("/staff/firms")
    assert listing.status_code == 200 and "Cyber Hulp" in listing.text
    assert "/staff/firms/new" not in listing.text
    detail = site.client.get(f"/staff/firms/{firm_id}")
    assert detail.status_code == 200
    assert f"/staff/firms/{firm_id}/vet" not in detail.text
    assert site.client.get("/staff/firms/new").status_code == 403
    assert site.client.get(f"/staff/firms/{firm_id}/edit").status_code == 403
    page = "/staff/firms"
    for path, data in (
        ("/staff/firms/new", form_fields(firm_data("Other", 2))),
        (f"/staff/firms/{firm_id}/edit", form_fields(firm_data("Renamed", 1))),
        (f"/staff/firms/{firm_id}/vet", {"expires_on": "2027-06-01"}),
        (f"/staff/firms/{firm_id}/suspend", {"reason": "complaints"}),
    ):
        assert site.submit(path, data, page=page).status_code == 403, path
    assert count_firms(site) == 1
    stored = firm(site, firm_id)
    assert (stored.name, stored.status) == ("Cyber Hulp", "vetted")
    assert [event.action for event in events(site, firm_id)] == ["firm-added"]


@pytest.mark.parametrize("role", ["approver", "editor"])
def test_only_admins_add(site, role):
    login(site, role)
    answer = site.submit("/staff/firms/new", form_fields(firm_data("X", 3)), page="/staff/firms")
    assert answer.status_code == 403
    assert count_firms(site) == 0


# --- staff: the record form --------------------------------------------------------------


def test_every_invalid_field_is_named_and_nothing_is_stored(site):
    login(site, "admin")
    form = site.client.get("/staff/firms/new")
    assert form.status_code == 200
    bad = firm_data(
        "",
        4,
        enterprise_number="0123.456.789",
        website="http://firm.be",
        phone="12",
        regions=["BE-XXX"],
        languages=[],
        specialities=["hacking"],
    )
    answer = site.submit("/staff/firms/new", form_fields(bad))
    assert answer.status_code == 400
    for name in ("name", "enterprise_number", "website", "phone", "regions", "languages"):
        assert re.search(rf'href="#{name}">{name}</a>', answer.text), name
    assert 'id="website-error">an https:// address' in answer.text
    assert "hacking" in answer.text  # the unknown speciality is named
    assert 'value="http://firm.be"' in answer.text  # what was typed is kept
    assert count_firms(site) == 0


def test_vetted_without_expiry_is_refused(site):
    login(site, "admin")
    answer = site.submit(
        "/staff/firms/new", form_fields(firm_data("Y", 5, expires_on="")), page="/staff/firms/new"
    )
    assert answer.status_code == 400
    assert "a vetted firm needs an expiry date" in answer.text
    assert count_firms(site) == 0


def test_admin_adds_then_edits_with_the_changes_shown(site):
    email = login(site, "admin")
    data = firm_data("Cyber Hulp", 6, status="pending", expires_on="", kmo_portefeuille=True)
    answer = site.submit("/staff/firms/new", form_fields(data), page="/staff/firms/new")
    assert answer.status_code == 303
    firm_id = int(answer.headers["location"].rsplit("/", 1)[1])
    stored = firm(site, firm_id)
    assert (stored.name, stored.status, stored.kmo_portefeuille) == ("Cyber Hulp", "pending", True)

    edit = site.client.get(f"/staff/firms/{firm_id}/edit")
    assert 'value="Cyber Hulp"' in edit.text and 'value="ISO 27001"' in edit.text
    changed = form_fields(data | {"name": "Cyber Hulp Gent", "regions": ["BE-VAN", "BE-VOV"]})
    answer = site.submit(
        f"/staff/firms/{firm_id}/edit", changed, page=f"/staff/firms/{firm_id}/edit"
    )
    assert answer.status_code == 303
    assert firm(site, firm_id).regions == ["BE-VAN", "BE-VOV"]
    trail = events(site, firm_id)
    assert [event.action for event in trail] == ["firm-added", "firm-changed"]
    assert trail[1].actor == email
    assert trail[1].detail["changes"]["name"] == ["Cyber Hulp", "Cyber Hulp Gent"]
    detail = site.client.get(f"/staff/firms/{firm_id}").text
    assert "name: Cyber Hulp → Cyber Hulp Gent" in detail
    assert "Latest changes" in site.client.get(f"/staff/firms/{firm_id}/edit").text


def test_an_invalid_edit_changes_nothing(site):
    firm_id = add_firm(site.database, "Cyber Hulp", 7)
    login(site, "admin")
    bad = form_fields(firm_data("Renamed", 7, email="not-an-address"))
    answer = site.submit(f"/staff/firms/{firm_id}/edit", bad, page=f"/staff/firms/{firm_id}/edit")
    assert answer.status_code == 400
    assert 'href="#email">email</a>' in answer.text
    assert firm(site, firm_id).name == "Cyber Hulp"


def test_a_second_firm_with_the_same_number_is_refused(site):
    add_firm(site.database, "First", 8)
    login(site, "admin")
    answer = site.submit(
        "/staff/firms/new", form_fields(firm_data("Second", 8)), page="/staff/firms"
    )
    assert answer.status_code == 400
    assert "exists" in answer.text
    assert count_firms(site) == 1


# --- staff: vetting and suspending -------------------------------------------------------


def test_vet_and_suspend_are_audited(site):
    firm_id = add_firm(site.database, "Cyber Hulp", 9, status="pending", expires_on="")
    email = login(site, "admin")
    page = f"/staff/firms/{firm_id}"
    default = (TODAY + timedelta(days=365)).isoformat()
    assert f'name="expires_on" type="date" value="{default}"' in site.client.get(page).text

    past = site.submit(f"{page}/vet", {"expires_on": TODAY.isoformat()}, page=page)
    assert past.status_code == 400 and "expire in the future" in past.text
    assert site.submit(f"{page}/vet", {"expires_on": "soon"}, page=page).status_code == 400
    assert firm(site, firm_id).status == "pending"

    assert site.submit(f"{page}/vet", {"expires_on": "2027-12-01"}, page=page).status_code == 303
    vetted = firm(site, firm_id)
    assert (vetted.status, vetted.vetted_by) == ("vetted", email)
    assert (vetted.vetted_on, vetted.expires_on) == (TODAY, date(2027, 12, 1))

    missing = site.submit(f"{page}/suspend", {"reason": "  "}, page=page)
    assert missing.status_code == 400 and "give a reason" in missing.text
    assert firm(site, firm_id).status == "vetted"
    answer = site.submit(f"{page}/suspend", {"reason": "complaints from clients"}, page=page)
    assert answer.status_code == 303
    assert firm(site, firm_id).status == "suspended"

    trail = events(site, firm_id)
    assert [event.action for event in trail] == ["firm-added", "firm-vetted", "firm-suspended"]
    assert trail[1].actor == email and trail[1].detail == {"expires_on": "2027-12-01"}
    assert trail[2].actor == email and trail[2].detail == {"reason": "complaints from clients"}
    detail = site.client.get(page).text
    assert "firm-suspended" in detail and "complaints from clients" in detail


def test_unknown_firm_is_not_found(site):
    login(site, "admin")
    assert site.client.get("/staff/firms/999").status_code == 404
    assert (
        site.submit("/staff/firms/999/suspend", {"reason": "x"}, page="/staff/firms").status_code
        == 404
    )


# --- staff: the list ---------------------------------------------------------------------


def _warning(html: str) -> str:
    match = re.search(r'<div class="notice" role="status" id="expiring">(.*?)</div>', html, re.S)
    return match.group(1) if match else ""


def test_expiring_soon_warning_at_30_days_not_31(site):
    add_firm(site.database, "Thirty Days", 10, expires_on=(TODAY + timedelta(days=30)).isoformat())
    add_firm(site.database, "Thirty One", 11, expires_on=(TODAY + timedelta(days=31)).isoformat())
    login(site, "editor")
    html = site.client.get("/staff/firms").text
    warning = _warning(html)
    assert "Thirty Days" in warning and "2026-12-27" in warning
    assert "Thirty One" not in warning
    assert "Thirty One" in html  # still listed


def test_no_warning_when_nothing_expires_soon(site):
    add_firm(site.database, "Far Away", 12)
    login(site, "editor")
    assert _warning(site.client.get("/staff/firms").text) == ""


def test_list_shows_the_record_and_filters_by_status(site):
    add_firm(site.database, "Vetted Firm", 13, kmo_portefeuille=True, regions=["BE-WLG"])
    add_firm(site.database, "Pending Firm", 14, status="pending", expires_on="")
    login(site, "editor")
    html = site.client.get("/staff/firms").text
    assert "Vetted Firm" in html and "Pending Firm" in html
    assert "2026-11-27, system" in html  # vetted on / by
    assert "Liège" in html or "Luik" in html or "BE-WLG" in html
    only = site.client.get("/staff/firms?status=pending").text
    assert "Pending Firm" in only and "Vetted Firm" not in only
    assert "Vetted Firm" in site.client.get("/staff/firms?status=bogus").text


def test_detail_shows_totals(site, database):
    firm_id = add_firm(site.database, "Counted", 15)
    login(site, "editor")
    html = site.client.get(f"/staff/firms/{firm_id}").text
    assert re.search(r"Shown</th><td>0</td>", html)
    assert re.search(r"Clicks</th><td>0</td>", html)
    assert "firm-added" in html


# --- the public directory ----------------------------------------------------------------


def _names(html: str) -> list[str]:
    return re.findall(r'<h3 id="firm-\d+">([^<]*?)(?: <span|</h3>)', html)


def test_only_vetted_unexpired_firms_are_shown(site):
    add_firm(site.database, "Zeta Vetted", 20)
    add_firm(site.database, "Alpha Vetted", 21)
    add_firm(site.database, "Pending", 22, status="pending", expires_on="")
    add_firm(site.database, "Ends Today", 23, expires_on=TODAY.isoformat(), vetted_on="2026-01-01")
    add_firm(site.database, "Ends Tomorrow", 24, expires_on=(TODAY + timedelta(days=1)).isoformat())
    suspended = add_firm(site.database, "Suspended", 25)
    with site.database.session() as session:
        directory.suspend(session, session.get(Firm, suspended), "complaints", None, NOW)
    answer = site.client.get("/firms")
    assert answer.status_code == 200
    assert _names(answer.text) == ["Alpha Vetted", "Ends Tomorrow", "Zeta Vetted"]  # by name
    assert "fair rotation" in answer.text


def test_each_filter(site):
    add_firm(site.database, "Antwerp NL", 30, regions=["BE-VAN"], languages=["nl"])
    add_firm(
        site.database,
        "Liege FR",
        31,
        regions=["BE-WLG"],
        languages=["fr", "de"],
        specialities=["security-audit"],
        kmo_portefeuille=True,
    )
    get = site.client.get
    assert _names(get("/firms?region=BE-WLG").text) == ["Liege FR"]
    assert _names(get("/firms?speaks=de").text) == ["Liege FR"]
    assert _names(get("/firms?speaks=nl").text) == ["Antwerp NL"]
    assert _names(get("/firms?speciality=incident-response").text) == ["Antwerp NL"]
    assert _names(get("/firms?kmo=1").text) == ["Liege FR"]
    assert _names(get("/firms?region=BE-VAN&kmo=1").text) == []
    assert _names(get("/firms?region=nowhere&speaks=xx").text) == ["Antwerp NL", "Liege FR"]


def test_a_listing_in_full_and_escaped(site):
    add_firm(
        site.database,
        HOSTILE,
        40,
        kmo_portefeuille=True,
        specialities=["ransomware-recovery", "backup-recovery"],
        certifications=["ISO 27001", "<b>CyFun</b>"],
    )
    html = site.client.get("/firms").text
    assert "<script>alert('firm')" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;CyFun&lt;/b&gt;" in html
    assert '<a href="https://www.firm40.be" rel="noopener">' in html
    assert 'href="tel:+3225112233"' in html and 'href="mailto:info@firm40.be"' in html
    assert "Recovery after ransomware" in html and "Backup and recovery" in html
    assert "Antwerp" in html  # the region's label, not its code
    assert 'class="badge">KMO-portefeuille' in html


@pytest.mark.parametrize(
    ("headers", "query", "language"),
    [({"accept-language": "fr-BE,fr;q=0.9"}, "", "fr"), ({}, "?lang=de", "de"), ({}, "", "en")],
)
def test_language_negotiation(site, headers, query, language):
    add_firm(site.database, "Cyber Hulp", 50)
    client = site.browser(**headers)
    html = client.get(f"/firms{query}").text
    assert f'<html lang="{language}">' in html
    assert f'href="/firms?lang={language}"' in html or f"lang={language}" in html
