"""The staff flow in a real browser: log in, open the queue, make an alert from an
advisory, edit and submit it, find that one cannot approve one's own text, approve as
someone else, send, see the messages in the file outbox and the public page. Screenshots of
the main pages are kept in test-artifacts/screenshots/ for people to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.delivery.dispatch import Dispatcher
from tests.browser import chromium, serve
from tests.conftest import ROOT
from tests.delivery_setup import add_subscribers
from tests.subscriber_site import Site
from tests.test_curation import GOOD, _advisory, _user

SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture
def live(settings, tmp_path):
    from alerts.store import Database

    database = Database(f"sqlite:///{tmp_path / 'browser.sqlite3'}")
    site = Site(settings, database)
    with serve(site.app) as base_url, chromium() as browser:
        yield site, database, base_url, browser
    database.dispose()


def _log_in(browser, base_url: str, email: str):
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/staff/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(GOOD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/staff")
    return page


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_from_queue_to_public_page_with_four_eyes(live, settings):
    site, database, base_url, browser = live
    _user(database, "ed@gov.example", "approver")
    _user(database, "boss@gov.example", "approver")
    add_subscribers(database, settings, 2)
    _advisory(database, 1, "FortiOS SSL-VPN flaw exploited <img src=x onerror=alert(1)>")

    editor = _log_in(browser, base_url, "ed@gov.example")
    dialogs = []
    editor.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    editor.get_by_role("link", name="Queue").click()
    assert "onerror=alert(1)" in editor.locator("main").inner_text()  # shown as text
    _shot(editor, "queue")
    editor.locator("input[name=advisory]").first.check()
    editor.get_by_role("button", name="Make an alert from the chosen advisories").click()
    editor.wait_for_url("**/edit")
    _shot(editor, "editor")
    editor.locator("#title_en").fill("FortiGate firewalls under attack: update today")
    editor.get_by_role("button", name="Save").click()
    editor.get_by_role("button", name="Submit for approval").click()
    assert editor.get_by_role("button", name="Approve").count() == 0  # four-eyes
    assert "someone else must approve" in editor.locator("main").inner_text()
    _shot(editor, "alert-submitted")

    boss = _log_in(browser, base_url, "boss@gov.example")
    boss.goto(editor.url)
    boss.get_by_role("button", name="Approve").click()
    boss.get_by_role("button", name="Send now").click()
    assert "sending" in boss.locator("main").inner_text()
    _shot(boss, "alert-sending")

    Dispatcher.from_settings(database, settings).drain()
    sent = list(Path(settings.outbox_dir()).rglob("*.eml"))
    assert len(sent) == 2
    assert "FortiGate firewalls under attack" in sent[0].read_text(errors="replace")

    alert_id = editor.url.rstrip("/").split("/")[-1]
    public = browser.new_page()
    public.goto(f"{base_url}/alerts/{alert_id}?lang=en")
    assert "FortiGate firewalls under attack" in public.locator("h1").inner_text()
    _shot(public, "public-alert")
    assert dialogs == []  # no script from the advisory ran
