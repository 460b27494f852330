"""The sign-up flow in a real browser: French from the browser's language, errors shown next
to their fields, confirmation by the emailed link, the preference centre, and a phone-sized
screen without sideways scrolling."""

from __future__ import annotations

import pytest

from tests.browser import chromium, serve
from tests.subscriber_site import Site


@pytest.fixture
def live(settings, tmp_path):
    from alerts.store import Database

    database = Database(f"sqlite:///{tmp_path / 'browser.sqlite3'}")
    site = Site(settings, database)
    with serve(site.app) as base_url, chromium() as browser:
        yield site, base_url, browser
    database.dispose()


def test_signup_in_french_with_errors_then_confirmation(live):
    site, base_url, browser = live
    page = browser.new_page(locale="fr-BE", extra_http_headers={"Accept-Language": "fr-BE"})
    page.goto(f"{base_url}/subscribe")
    assert page.get_attribute("html", "lang") == "fr"

    page.get_by_role("button", name="S'abonner").click()
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert page.locator("#email").get_attribute("aria-invalid") == "true"
    assert page.locator("#email-error").is_visible()

    page.locator("#organisation").fill("Boulangerie Dubois")
    page.locator("#email").fill("contact@dubois.be")
    page.locator("#region").select_option("BE-WLG")
    page.locator("#sector").select_option("retail")
    page.locator("#size_band").select_option("1")
    page.locator("#language").select_option("fr")
    page.locator("#dont_know").check()
    page.locator("#consent").check()
    page.get_by_role("button", name="S'abonner").click()
    assert "contact@dubois.be" in page.locator("main").inner_text()

    page.goto(base_url + site.last_link())
    page.locator("main form button").click()
    page.wait_for_url("**/preferences/**")
    assert page.locator("[role=status]").is_visible()
    with site.database.session() as session:
        from subscribers.models import Subscriber

        assert session.query(Subscriber).one().status == "active"


def test_signup_page_fits_a_phone_screen(live):
    _, base_url, browser = live
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(f"{base_url}/subscribe?lang=nl")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # Every form control has a visible label or an accessible name.
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim()).length"""
    )
    assert unnamed == 0
