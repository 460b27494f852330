"""Curation: the life-cycle table and four-eyes rule, the first draft, the editor's form,
and the staff pages from the queue to a sent alert (both databases)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.compose.content import paragraphs
from alerts.curation import drafting, editing, lifecycle, service
from alerts.curation.models import Alert, QueueDecision
from alerts.delivery import outbox
from alerts.delivery.service import send_scheduled
from alerts.models import Advisory, AdvisoryCve
from alerts.relevance.service import default_catalogue
from alerts.staff import accounts
from alerts.staff.models import AuditEvent
from tests.delivery_setup import add_subscribers
from tests.subscriber_site import CSRF, Site

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
GOOD = "correct horse battery staple"
EDITOR, APPROVER = lifecycle.Actor(1, "editor"), lifecycle.Actor(2, "approver")


# --- the life cycle (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "actor", "last_editor", "expected"),
    [
        ("draft", "submit", EDITOR, 1, "submitted"),
        ("submitted", "approve", APPROVER, 1, "approved"),
        ("approved", "schedule", APPROVER, 1, "scheduled"),
        ("scheduled", "unschedule", APPROVER, 1, "approved"),
        ("approved", "send", APPROVER, 1, "sending"),
        ("scheduled", "send", APPROVER, 1, "sending"),
        ("submitted", "reject", APPROVER, 1, "rejected"),
        ("approved", "edit", EDITOR, 1, "submitted"),  # back to review
        ("scheduled", "edit", APPROVER, 2, "submitted"),
        ("rejected", "edit", EDITOR, 1, "draft"),
        ("draft", "cancel", EDITOR, 1, "cancelled"),
        ("scheduled", "cancel", APPROVER, 1, "cancelled"),
    ],
)
def test_allowed_steps_lead_where_the_table_says(status, action, actor, last_editor, expected):
    assert lifecycle.check(status, action, actor, last_editor) == expected


@pytest.mark.parametrize(
    ("status", "action", "actor", "last_editor", "why"),
    [
        ("submitted", "approve", APPROVER, 2, "someone else must approve"),  # four-eyes
        ("submitted", "approve", lifecycle.Actor(3, "admin"), 3, "someone else"),
        ("submitted", "approve", EDITOR, 2, "needs the approver role"),
        ("draft", "approve", APPROVER, 1, "cannot be given"),
        ("draft", "send", APPROVER, 1, "cannot be given"),
        ("submitted", "send", APPROVER, 1, "cannot be given"),
        ("approved", "send", EDITOR, 2, "needs the approver role"),
        ("approved", "cancel", EDITOR, 1, "needs the approver role"),
        ("sending", "edit", APPROVER, 1, "cannot be given"),
        ("sent", "cancel", APPROVER, 1, "cannot be given"),
        ("draft", "publish", APPROVER, 1, "unknown action"),
    ],
)
def test_refused_steps_say_why(status, action, actor, last_editor, why):
    with pytest.raises(lifecycle.TransitionRefused, match=why):
        lifecycle.check(status, action, actor, last_editor)


def test_the_buttons_offered_follow_the_rules():
    assert "approve" not in lifecycle.allowed("submitted", APPROVER, last_editor_id=2)
    assert "approve" in lifecycle.allowed("submitted", APPROVER, last_editor_id=1)
    assert lifecycle.allowed("sent", APPROVER, 1) == []


# --- the first draft (pure) --------------------------------------------------------------


def test_an_exploited_flaw_drafts_an_urgent_alert_in_four_languages():
    source = drafting.Source(
        title="CISA adds FortiOS flaw to KEV",
        source="cisa-kev",
        url="https://www.cisa.gov/kev",
        cves=("CVE-2026-10001",),
        families=("fortinet-fortigate",),
        known_exploited=True,
        required_action="Apply mitigations per vendor instructions.",
        links=("http://insecure.example/", "https://fortiguard.com/psirt/FG-IR-26-001"),
    )
    draft = drafting.draft([source], default_catalogue())
    assert draft.tier == "urgent" and draft.known_exploited and draft.cves == ["CVE-2026-10001"]
    assert set(draft.texts) == {"nl", "fr", "en", "de"}
    name = default_catalogue().get("fortinet-fortigate").name
    for text in draft.texts.values():
        assert name in text["title"] and "CVE-2026-10001" in text["what"] and text["actions"]
    assert "Apply mitigations per vendor instructions." in draft.texts["en"]["actions"]
    assert all(url.startswith("https://") for _, url in draft.links)
    assert draft.families == ["fortinet-fortigate"]


def test_a_flaw_nobody_exploits_yet_drafts_a_newsletter_item():
    source = drafting.Source(
        title="WordPress plugin flaw", source="wp", url=None, products=("Plugin X",)
    )
    draft = drafting.draft([source], default_catalogue())
    assert draft.tier == "newsletter" and "Plugin X" in draft.texts["fr"]["title"]


# --- the editor's form (pure) ------------------------------------------------------------

KNOWN = {
    "families": frozenset({"fortinet-fortigate"}),
    "sectors": frozenset({"retail"}),
    "regions": frozenset({"BE-VAN"}),
}


def test_the_form_keeps_texts_links_and_targeting():
    form = {
        "tier": "urgent",
        "title_en": "FortiGate flaw",
        "what_en": "Attackers…\x00",
        "actions_en": "Update\n\n Check logs ",
        "links": "Fortinet | https://fortiguard.com/psirt\nhttps://cert.be/x",
    }
    lists = {"families": ["fortinet-fortigate"], "sectors": ["retail"], "regions": []}
    edit = editing.parse(form, lists, KNOWN)
    assert edit.texts["en"]["actions"] == ["Update", "Check logs"]
    assert edit.texts["en"]["what"] == "Attackers…"  # control characters dropped
    assert edit.links == [
        ["Fortinet", "https://fortiguard.com/psirt"],
        ["https://cert.be/x", "https://cert.be/x"],
    ]
    assert list(edit.texts) == ["en"] and edit.families == ["fortinet-fortigate"]


def test_every_bad_field_is_named():
    form = {
        "tier": "loud",
        "title_nl": "x" * 201,
        "links": "javascript:alert(1)",
        "actions_fr": "y" * 301,
    }
    lists = {"families": ["no-such"], "sectors": [], "regions": ["BE-XXX"]}
    with pytest.raises(editing.EditErrors) as raised:
        editing.parse(form, lists, KNOWN)
    assert set(raised.value.errors) == {
        "tier",
        "title_nl",
        "links",
        "actions_fr",
        "families",
        "regions",
    }


def test_the_diff_names_the_changed_lines():
    diff = editing.text_diff({"en": {"title": "Old"}}, {"en": {"title": "New"}})
    assert "-en.title: Old" in diff and "+en.title: New" in diff


# --- the staff pages, end to end -----------------------------------------------------------


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def _user(database, email: str, role: str) -> None:
    with database.session() as session:
        user = accounts.add(session, email, email.split("@")[0].title(), role, GOOD, NOW)
        user.must_change_password = False


def _login(site: Site, email: str):
    browser = site.browser()
    token = CSRF.search(browser.get("/staff/login").text).group(1)
    response = browser.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": GOOD}
    )
    assert response.status_code == 303
    return browser


def _post(browser, path: str, data=None, page="/staff"):
    token = CSRF.search(browser.get(page).text).group(1)
    return browser.post(path, data={"csrf_token": token} | (data or {}))


def _advisory(database, number: int, title: str, tier: str = "urgent", cve=None, **fields) -> int:
    item = f"item-{number}"
    with database.session() as session:
        advisory = Advisory(
            uid=f"test-{number}",
            source=fields.pop("source", "cisa-kev"),
            item_id=item,
            item_key=hashlib.sha256(item.encode()).hexdigest(),
            title=title,
            summary_text="A flaw.",
            url="https://www.cisa.gov/known-exploited-vulnerabilities-catalog",
            cve_ids=[f"CVE-2026-{10000 + (cve or number)}"],
            known_exploited=tier == "urgent",
            tier=tier,
            score=fields.pop("score", 80 if tier == "urgent" else 40),
            reasons=[
                {
                    "rule": "kev",
                    "weight": 40,
                    "text": "Known exploited",
                    "texts": {"en": "Known exploited"},
                }
            ],
            families=["fortinet-fortigate"],
            content_hash="x" * 64,
            first_seen_at=NOW,
            last_seen_at=NOW,
            queued_at=NOW + timedelta(minutes=number),
            **fields,
        )
        session.add(advisory)
        session.flush()
        session.add(AdvisoryCve(advisory_id=advisory.id, cve_id=advisory.cve_ids[0]))
        return advisory.id


def test_from_the_queue_to_a_sent_alert_with_four_eyes(site, database, settings):
    _user(database, "ed@gov.example", "editor")
    _user(database, "ap@gov.example", "approver")
    add_subscribers(database, settings, 3)
    first = _advisory(database, 1, "FortiOS SSL-VPN flaw exploited <script>alert(1)</script>")
    second = _advisory(database, 2, "Same flaw, other source", source="certfr-alertes", cve=1)
    editor, approver = _login(site, "ed@gov.example"), _login(site, "ap@gov.example")

    queue = editor.get("/staff/queue")
    assert queue.status_code == 200 and "Same flaw, other source" in queue.text
    assert "Same CVE:" in queue.text  # one item, two sources
    merged = re.findall(r'name="advisory" value="([\d,]+)"', queue.text)
    assert merged == [f"{second},{first}"]
    assert "<script>alert(1)</script>" not in queue.text and "&lt;script&gt;" in queue.text
    created = _post(editor, "/staff/queue/alert", {"advisory": merged}, page="/staff/queue")
    assert created.status_code == 303
    alert_id = int(re.search(r"/staff/alerts/(\d+)/edit", created.headers["location"]).group(1))
    assert "Same flaw" not in editor.get("/staff/queue").text  # left the queue

    edit_page = editor.get(f"/staff/alerts/{alert_id}/edit")
    assert edit_page.status_code == 200 and "CVE-2026-10001" in edit_page.text
    form = _edit_form(edit_page.text)
    form["title_en"] = "FortiGate firewalls under attack"
    assert (
        _post(
            editor, f"/staff/alerts/{alert_id}/edit", form, page=f"/staff/alerts/{alert_id}/edit"
        ).status_code
        == 303
    )
    assert (
        _post(
            editor, f"/staff/alerts/{alert_id}/submit", page=f"/staff/alerts/{alert_id}"
        ).status_code
        == 303
    )

    own = _post(editor, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}")
    assert own.status_code == 409 and "approver role" in own.text
    detail = approver.get(f"/staff/alerts/{alert_id}")
    assert "FortiGate firewalls under attack" in detail.text and ">Approve<" in detail.text
    assert (
        _post(
            approver, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}"
        ).status_code
        == 303
    )
    assert (
        _post(
            approver, f"/staff/alerts/{alert_id}/send", page=f"/staff/alerts/{alert_id}"
        ).status_code
        == 303
    )
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.status, alert.approved_by) == ("sending", "ap@gov.example")
        assert len(outbox.messages(session, alert_id)) == 3
        actions = [
            e.action
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.subject == f"alert:{alert_id}")
            )
        ]
    assert actions == [
        "alert-created",
        "alert-edited",
        "alert-submit",
        "alert-approve",
        "alert-send",
    ]
    for _ in range(2):
        assert site.browser().get(f"/alerts/{alert_id}").status_code == 200  # the public page
    figures = approver.get(f"/staff/alerts/{alert_id}").text
    assert "Delivery" in figures and "<td>EN</td><td>3</td><td>3</td>" in figures  # 3 waiting
    assert "Views of the public page: 2" in figures


def test_an_approver_who_edited_last_cannot_approve_and_edits_after_approval_go_back(
    site, database
):
    _user(database, "ap@gov.example", "approver")
    _user(database, "ap2@gov.example", "approver")
    advisory = _advisory(database, 1, "FortiOS flaw")
    one, two = _login(site, "ap@gov.example"), _login(site, "ap2@gov.example")
    created = _post(one, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    alert_id = int(created.headers["location"].split("/")[3])
    _post(one, f"/staff/alerts/{alert_id}/submit", page=f"/staff/alerts/{alert_id}")
    refused = _post(one, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}")
    assert refused.status_code == 409 and "someone else must approve" in refused.text
    assert (
        _post(
            two, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}"
        ).status_code
        == 303
    )
    form = _edit_form(two.get(f"/staff/alerts/{alert_id}/edit").text)
    form["what_en"] = "Changed after approval."
    _post(two, f"/staff/alerts/{alert_id}/edit", form, page=f"/staff/alerts/{alert_id}/edit")
    with database.session() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.status, alert.approved_by, alert.last_editor_id) == (
            "submitted",
            None,
            alert.last_editor_id,
        )
    again = _post(two, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}")
    assert again.status_code == 409  # two edited it last now
    assert (
        _post(
            one, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}"
        ).status_code
        == 303
    )


def test_dismissing_needs_a_reason_and_is_kept(site, database):
    _user(database, "ed@gov.example", "editor")
    advisory = _advisory(database, 1, "Irrelevant for SMEs")
    editor = _login(site, "ed@gov.example")
    assert (
        _post(
            editor, "/staff/queue/dismiss", {"advisory": str(advisory)}, page="/staff/queue"
        ).status_code
        == 400
    )
    done = _post(
        editor,
        "/staff/queue/dismiss",
        {"advisory": str(advisory), "reason": "mainframe only"},
        page="/staff/queue",
    )
    assert done.status_code == 303 and "Irrelevant for SMEs" not in editor.get("/staff/queue").text
    with database.session() as session:
        decision = session.get(QueueDecision, advisory)
        assert (decision.decision, decision.reason) == ("dismissed", "mainframe only")


def test_the_queue_pages_with_a_cursor_and_filters(site, database):
    _user(database, "ed@gov.example", "editor")
    for number in range(30):
        _advisory(database, number, f"Advisory number {number:02d}")
    _advisory(database, 99, "A newsletter item", tier="newsletter")
    _advisory(database, -5, "Oldest but most relevant", score=95)
    editor = _login(site, "ed@gov.example")
    first = editor.get("/staff/queue")
    assert first.text.index("Oldest but most relevant") < first.text.index("Advisory number 29")
    assert "Advisory number 29" in first.text and "Advisory number 05" not in first.text
    assert "Urgent (31)" in first.text and "Newsletter (1)" in first.text
    following = re.search(r'href="(/staff/queue\?[^"]*after=[^"]+)"', first.text).group(1)
    second = editor.get(following.replace("&amp;", "&"))
    assert "Advisory number 05" in second.text and "Advisory number 29" not in second.text
    assert "Advisory number 07" in editor.get("/staff/queue?q=number+07").text
    assert "Advisory number 07" in editor.get("/staff/queue?q=CVE-2026-10007").text
    assert "A newsletter item" in editor.get("/staff/queue?tier=newsletter").text
    assert editor.get("/staff/queue?after=garbage&tier=bogus&language=xx").status_code == 200


def test_scheduled_alerts_go_out_at_their_time(site, database, settings):
    _user(database, "ed@gov.example", "editor")
    _user(database, "ap@gov.example", "approver")
    add_subscribers(database, settings, 2)
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor, approver = _login(site, "ed@gov.example"), _login(site, "ap@gov.example")
    alert_id = int(
        _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
        .headers["location"]
        .split("/")[3]
    )
    _post(editor, f"/staff/alerts/{alert_id}/submit", page=f"/staff/alerts/{alert_id}")
    _post(approver, f"/staff/alerts/{alert_id}/approve", page=f"/staff/alerts/{alert_id}")
    past = _post(
        approver,
        f"/staff/alerts/{alert_id}/schedule",
        {"when": "2020-01-01T08:00"},
        page=f"/staff/alerts/{alert_id}",
    )
    assert past.status_code == 409 and "future" in past.text
    later = datetime.now(UTC) + timedelta(hours=2)
    local = later.astimezone(drafting_zone()).strftime("%Y-%m-%dT%H:%M")
    assert (
        _post(
            approver,
            f"/staff/alerts/{alert_id}/schedule",
            {"when": local},
            page=f"/staff/alerts/{alert_id}",
        ).status_code
        == 303
    )
    assert send_scheduled(database, default_catalogue(), datetime.now(UTC)) == []
    assert send_scheduled(database, default_catalogue(), later + timedelta(minutes=1)) == [alert_id]
    with database.session() as session:
        assert session.get(Alert, alert_id).status == "sending"


def test_previews_show_the_email_and_the_sms_cost(site, database):
    _user(database, "ed@gov.example", "editor")
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor = _login(site, "ed@gov.example")
    alert_id = int(
        _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
        .headers["location"]
        .split("/")[3]
    )
    detail = editor.get(f"/staff/alerts/{alert_id}")
    assert "segment" in detail.text and ("GSM-7" in detail.text or "UCS-2" in detail.text)
    html = editor.get(f"/staff/alerts/{alert_id}/preview/fr.html")
    assert html.status_code == 200 and "<html" in html.text.lower()
    text = editor.get(f"/staff/alerts/{alert_id}/preview/nl.txt")
    assert text.status_code == 200 and text.text.startswith("Subject: ")
    assert editor.get(f"/staff/alerts/{alert_id}/preview/xx.html").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/staff/queue/alert",
        "/staff/queue/dismiss",
        "/staff/alerts/1/edit",
        "/staff/alerts/1/approve",
        "/staff/alerts/1/send",
    ],
)
def test_curation_forms_refuse_a_missing_csrf_token(site, database, path):
    _user(database, "ap@gov.example", "approver")
    approver = _login(site, "ap@gov.example")
    response = approver.post(path, data={"advisory": "1", "reason": "x"})
    assert response.status_code == 403


def drafting_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Brussels")


def _edit_form(page: str) -> dict:
    """The editor form's current values, as a browser would post them."""
    form: dict = {}
    for name, value in re.findall(
        r'<input id="[^"]+" name="([^"]+)" type="text" value="([^"]*)"', page
    ):
        form[name] = _unescape(value)
    for name, value in re.findall(
        r'<textarea id="[^"]+" name="([^"]+)" rows="\d+">(.*?)</textarea>', page, re.S
    ):
        form[name] = _unescape(value)
    form["tier"] = re.search(r'name="tier" value="(\w+)" checked', page).group(1)
    form["families"] = re.findall(r'name="families" value="([^"]+)" checked', page)
    return form


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_the_alert_list_filters_by_status(site, database):
    _user(database, "ed@gov.example", "editor")
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor = _login(site, "ed@gov.example")
    _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    drafts, sent = editor.get("/staff/alerts?status=draft"), editor.get("/staff/alerts?status=sent")
    assert drafts.status_code == sent.status_code == 200
    assert "Fortinet" in drafts.text and "Fortinet" not in sent.text
    assert 'value="draft" selected' in drafts.text


def test_the_sms_preview_marks_the_characters_that_force_unicode(site, database):
    _user(database, "ed@gov.example", "editor")
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor = _login(site, "ed@gov.example")
    location = _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    alert_id = int(location.headers["location"].split("/")[3])
    form = _edit_form(editor.get(f"/staff/alerts/{alert_id}/edit").text)
    form["title_en"] = "Ransomware ☠ hits FortiGate"  # no GSM-7 equivalent for the skull
    _post(editor, f"/staff/alerts/{alert_id}/edit", form, page=f"/staff/alerts/{alert_id}/edit")
    page = editor.get(f"/staff/alerts/{alert_id}").text
    assert '<pre class="sms" lang="en">' in page and "UCS-2" in page
    assert 'Ransomware <mark class="unicode">☠</mark>' in page  # the title shortened to fit


def test_advisories_about_the_same_cve_merge_into_one_item():
    def row(number, cves, source):
        return Advisory(id=number, cve_ids=cves, source=source, title=str(number))

    rows = [row(3, ["CVE-1"], "a"), row(2, ["CVE-2"], "b"), row(1, ["CVE-2", "CVE-1"], "c")]
    items = service.merge_duplicates(rows)
    assert [item.ids for item in items] == ["3", "2,1"]  # joins the item of its first CVE
    assert items[1].sources == ["b", "c"]


def test_the_editor_counts_recipients_for_an_unsaved_targeting(site, database, settings):
    _user(database, "ed@gov.example", "editor")
    add_subscribers(database, settings, 4)  # all run a FortiGate, in English
    add_subscribers(database, settings, 2, start=10, families=["microsoft-exchange"])
    advisory = _advisory(database, 1, "FortiOS flaw")
    editor = _login(site, "ed@gov.example")
    location = _post(editor, "/staff/queue/alert", {"advisory": str(advisory)}, page="/staff/queue")
    alert_id = int(location.headers["location"].split("/")[3])
    form = _edit_form(editor.get(f"/staff/alerts/{alert_id}/edit").text)
    fortigate = _post(
        editor,
        f"/staff/alerts/{alert_id}/edit",
        form | {"count": "1"},
        page=f"/staff/alerts/{alert_id}/edit",
    )
    assert fortigate.status_code == 200 and "not saved yet" in fortigate.text
    assert (
        '<th scope="row">email</th><td>0</td><td>0</td><td>4</td><td>0</td><td>4</td>'
        in fortigate.text
    )
    everyone = _post(
        editor,
        f"/staff/alerts/{alert_id}/edit",
        form | {"count": "1", "families": []},
        page=f"/staff/alerts/{alert_id}/edit",
    )
    assert "<td>6</td><td>0</td><td>6</td>" in everyone.text
    with database.session() as session:
        assert session.get(Alert, alert_id).targeting["families"] == [
            "fortinet-fortigate"
        ]  # unsaved


def test_paragraphs_of_what_is_going_on_are_kept():
    form = {
        "tier": "urgent",
        "title_en": "Two\nlines",
        "what_en": "First paragraph,\r\nsecond line.\r\n\r\n\r\n\r\nSecond\x07 paragraph.  ",
        "affected_en": "Shops\n\nOffices",
    }
    edit = editing.parse(form, {}, KNOWN)
    what = edit.texts["en"]["what"]
    assert what == "First paragraph,\nsecond line.\n\nSecond  paragraph."
    assert paragraphs(what) == [["First paragraph,", "second line."], ["Second  paragraph."]]
    assert edit.texts["en"]["affected"] == "Shops\n\nOffices"
    assert edit.texts["en"]["title"] == "Two lines"  # one line
