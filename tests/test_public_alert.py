"""The public alert page: published alerts only, the reader's language or English, staff
text escaped, the referral block and the KMO-portefeuille line."""

import pytest
from fastapi.testclient import TestClient

from alerts.curation.models import DRAFT, SENT
from alerts.web.app import create_app
from tests.delivery_setup import TEXTS, add_alert


@pytest.fixture
def client(settings, database):
    return TestClient(create_app(settings, database))


def test_published_alert_in_the_readers_language(client, database):
    alert_id = add_alert(
        database,
        status=SENT,
        firms=[{"name": "Veilig IT", "website": "veilig.example", "kmo_portefeuille": True}],
    )
    page = client.get(f"/alerts/{alert_id}?lang=nl")
    assert page.status_code == 200 and TEXTS["nl"]["title"] in page.text
    assert "Veilig IT" in page.text and "KMO-portefeuille" in page.text
    assert '<html lang="nl">' in page.text


def test_missing_language_shows_english_marked_as_such(client, database):
    page = client.get(f"/alerts/{add_alert(database, status=SENT)}?lang=fr")
    assert TEXTS["en"]["title"] in page.text and '<article lang="en">' in page.text
    assert '<html lang="fr">' in page.text  # the page around it stays French


def test_drafts_and_unsent_alerts_are_not_public(client, database):
    assert client.get(f"/alerts/{add_alert(database, status=DRAFT)}").status_code == 404
    assert client.get(f"/alerts/{add_alert(database)}").status_code == 404  # approved only
    assert client.get("/alerts/999").status_code == 404


def test_staff_text_is_escaped(client, database):
    hostile = {"en": TEXTS["en"] | {"title": "<script>alert(1)</script>{{ 7*7 }}"}}
    page = client.get(f"/alerts/{add_alert(database, status=SENT, texts=hostile)}?lang=en")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert "{{ 7*7 }}" in page.text and "49" not in page.text
