"""The maturity scan in a real browser: answered by clicking labels in Dutch, the result
with its levels and steps, the printed page without navigation or forms, a phone-sized
screen without sideways scrolling, and every control named."""

from __future__ import annotations

import pytest

from alerts.maturity.scan import load_scan
from tests import test_browser_subscribe

SCAN = load_scan()
live = test_browser_subscribe.live  # the served site and chromium


def test_the_scan_answered_in_dutch_and_printed(live):
    site, base_url, browser = live
    page = browser.new_page(locale="nl-BE", extra_http_headers={"Accept-Language": "nl-BE"})
    page.goto(f"{base_url}/scan")
    assert page.get_attribute("html", "lang") == "nl"
    for question in SCAN.questions:
        if question.kind == "single":  # the lowest-scoring real answer, by its label
            answer = min((a for a in question.answers if not a.unknown), key=lambda a: a.points)
            page.locator(f"#q-{question.id}-{answer.id}").check()
    page.get_by_label(SCAN.questions[2].options[0].shown("nl")).check()
    page.locator("#region").select_option("BE-VAN")
    page.get_by_role("button", name="Toon mijn resultaat").click()

    main = page.locator("main").inner_text()
    assert SCAN.level_name(0, "nl") in main
    assert SCAN.kmo_note.get("nl") in main
    assert page.locator("ol.steps li").count() == 3
    page.emulate_media(media="print")
    assert not page.locator("header").is_visible()
    assert not page.locator("main form").first.is_visible()
    assert page.locator("table.levels").is_visible()


@pytest.mark.parametrize("path", ["/scan?lang=fr", "/scan?lang=de"])
def test_the_scan_fits_a_phone_and_names_every_control(live, path):
    _, base_url, browser = live
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(base_url + path)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim()).length"""
    )
    assert unnamed == 0
