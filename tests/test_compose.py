"""The composition stage: alert emails, SMS and the newsletter, rendered from staff text in
every language, escaped, with placeholders intact; and SMS encoding and segment counts."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from markupsafe import escape

from alerts.compose import (
    PLACEHOLDERS,
    AlertContent,
    AlertText,
    Firm,
    MissingText,
    RecipientLinks,
    compose_email,
    compose_newsletter,
    compose_sms,
    missing_languages,
    sms_report,
    sms_segments,
    to_gsm7,
)
from alerts.compose.sms import REPORT_LINK

LANGUAGES = ("nl", "fr", "en", "de")
PUBLIC_URL = "https://cyberalerts.example.belgium.be/alerts/217-fortinet-v"
OPTOUT_URL = "https://cyberalerts.example.belgium.be/s/AbCdEfGhIjKl-code12"
assert len(PUBLIC_URL) == len(OPTOUT_URL) == 60  # realistic link lengths
LINKS = RecipientLinks(
    preferences="https://cyberalerts.example.belgium.be/preferences/tok",
    unsubscribe="https://cyberalerts.example.belgium.be/unsubscribe/tok",
    sms_optout=OPTOUT_URL,
)

TEXTS = {
    "en": AlertText(
        title="Fortinet FortiGate SSL-VPN flaw lets attackers take over firewalls",
        what="Attackers are breaking into FortiGate firewalls.\nThey steal VPN passwords.\n\n"
        "Fortinet has published a fix.",
        affected="Businesses with a FortiGate firewall that has SSL-VPN switched on.",
        actions=("Update FortiOS to 7.4.5 or later today.", "Change all VPN passwords."),
        urgency="Act today",
    ),
    "nl": AlertText(
        title="Lek in Fortinet FortiGate SSL-VPN laat aanvallers firewalls overnemen",
        what="Aanvallers breken in op FortiGate-firewalls.\n\nFortinet heeft een oplossing.",
        affected="Kmo's met een FortiGate-firewall waarop SSL-VPN aanstaat.",
        actions=("Werk FortiOS vandaag bij naar 7.4.5.", "Wijzig alle VPN-wachtwoorden."),
        urgency="Vandaag handelen",
    ),
    "fr": AlertText(
        title="Une faille du SSL-VPN FortiGate permet de prendre le contrôle des pare-feux",
        what="Des attaquants l’exploitent « déjà ».\n\nFortinet a publié un correctif.",
        affected="Les PME équipées d'un pare-feu FortiGate avec SSL-VPN activé.",
        actions=("Mettez FortiOS à jour aujourd'hui.", "Changez les mots de passe VPN."),
        urgency="À traiter aujourd’hui",
    ),
    "de": AlertText(
        title="Lücke im Fortinet-FortiGate-SSL-VPN ermöglicht Übernahme von Firewalls",
        what="Angreifer dringen in FortiGate-Firewalls ein.\n\nFortinet hat ein Update.",
        affected="KMU mit einer FortiGate-Firewall mit aktiviertem SSL-VPN.",
        actions=("Aktualisieren Sie FortiOS noch heute.", "Ändern Sie alle VPN-Passwörter."),
        urgency="Heute handeln",
    ),
}
CONTENT = AlertContent(
    alert_id=217,
    tier="urgent",
    public_url=PUBLIC_URL,
    texts=TEXTS,
    cves=("CVE-2024-21762",),
    known_exploited=True,
    links=(("Fortinet PSIRT advisory", "https://fortiguard.com/psirt/FG-IR-24-015"),),
    published=date(2026, 11, 27),
)
FIRM = Firm(
    name="Veilig & Zeker BV",
    website="www.veilig-zeker.be",
    phone="+32 9 123 45 67",
    email="hulp@veilig-zeker.be",
    kmo_portefeuille=True,
    specialities=("firewalls", "VPN"),
)

# The static wording each language must show (from its catalogue, never English).
WORDING = {
    "nl": ("Wat moet u nu doen", "Wie is getroffen", "Uitschrijven"),
    "fr": ("Que faire maintenant", "Qui est concerné", "Se désabonner"),
    "en": ("What to do now", "Who is affected", "Unsubscribe"),
    "de": ("Was Sie jetzt tun sollten", "Wer betroffen ist", "Abmelden"),
}
SUBJECT = {
    "nl": "Dringende cyberwaarschuwing: ",
    "fr": "Alerte cyber urgente : ",
    "en": "Urgent cyber alert: ",
    "de": "Dringende Cyberwarnung: ",
}
SMS_LABEL = {
    "nl": "DRINGENDE cyberwaarschuwing: ",
    "fr": "Alerte cyber URGENTE: ",
    "en": "URGENT cyber alert: ",
    "de": "DRINGENDE Cyberwarnung: ",
}
KMO_LINE = {
    "nl": "via de KMO-portefeuille subsidie",
    "fr": "via le portefeuille PME (KMO-portefeuille)",
    "en": "security advice through the KMO-portefeuille",
    "de": "über das KMO-portefeuille einen Zuschuss",
}


def only(language: str, content: AlertContent = CONTENT) -> AlertContent:
    return replace(content, texts={language: content.texts[language]})


# --- email ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_renders_with_its_own_wording(language):
    email = compose_email(CONTENT, language, LINKS)
    assert (email.language, email.fallback) == (language, False)
    assert email.subject == SUBJECT[language] + TEXTS[language].title
    for part in (email.text, email.html):
        for wording in WORDING[language]:
            assert wording.upper() in part.upper()  # plain-text headings are in capitals
        assert PUBLIC_URL in part
    assert TEXTS[language].actions[0] in email.text
    assert str(escape(TEXTS[language].actions[0])) in email.html
    if language != "en":
        assert "WHAT TO DO NOW" not in (email.text + email.html).upper()
    assert f'<html lang="{language}"' in email.html
    assert "1. " + TEXTS[language].actions[0] in email.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_kmo_portefeuille_and_wallonia_support_are_always_mentioned(language):
    for firms in ((), (FIRM,)):
        email = compose_email(CONTENT, language, LINKS, firms)
        for part in (email.text, email.html):
            assert KMO_LINE[language] in part
            assert "chèques-entreprises" in part


def test_the_alert_follows_the_cert_structure():
    email = compose_email(CONTENT, "en", LINKS)
    order = [
        "URGENT - Act today",
        "ACTIVELY EXPLOITED: Attackers are already using this weakness.",
        TEXTS["en"].title,
        "Published on 27 November 2026",
        "WHAT IS GOING ON",
        "WHO IS AFFECTED",
        "WHAT TO DO NOW",
        "1. Update FortiOS",
        "2. Change all VPN passwords.",
        "Vulnerabilities (CVE): CVE-2024-21762",
        "- Fortinet PSIRT advisory: https://fortiguard.com/psirt/FG-IR-24-015",
        PUBLIC_URL,
        "security advice through the KMO-portefeuille",
        "You receive this alert because",
        f"Change your preferences: {LINKS.preferences}",
        f"Unsubscribe: {LINKS.unsubscribe}",
    ]
    positions = [email.text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "<" not in email.text  # the plain-text part reads on its own
    assert "\n\n\n" not in email.text
    html = email.html
    assert "Actively exploited" in html and "Act today" in html
    assert "<ol" in html and html.count("<li") == 3  # two steps, one reference
    assert 'href="https://www.cve.org/CVERecord?id=CVE-2024-21762"' in html


def test_html_is_email_client_safe():
    html = compose_email(CONTENT, "nl", LINKS, (FIRM,)).html
    assert "<style" not in html and "<script" not in html and 'class="' not in html
    assert "max-width:600px" in html
    assert '<table role="presentation" width="600"' in html  # Outlook's fixed-width wrapper
    assert all('role="presentation"' in tag for tag in re.findall(r"<table[^>]*>", html))
    assert '<meta name="viewport"' in html and "<title>" in html
    assert 'dir="ltr"' in html


def test_fallback_to_english_is_flagged_and_explained_in_the_readers_language():
    email = compose_email(only("en"), "de", LINKS)
    assert (email.language, email.fallback) == ("en", True)
    assert email.subject.startswith("Urgent cyber alert")
    assert "WHAT TO DO NOW" in email.text and "What to do now" in email.html
    assert '<html lang="en"' in email.html
    note = "Diese Warnung ist noch nicht auf Deutsch verfügbar"
    assert note in email.text
    assert '<p lang="de" style="' in email.html and note in email.html
    assert compose_email(only("en"), "en", LINKS).fallback is False
    assert compose_email(CONTENT, "es", LINKS).language == "en"  # not one of ours


def test_without_english_or_the_language_nothing_is_composed():
    with pytest.raises(MissingText):
        compose_email(only("nl"), "fr", LINKS)
    blank = replace(CONTENT, texts={"en": TEXTS["en"], "fr": replace(TEXTS["fr"], title=" ")})
    assert compose_email(blank, "fr", LINKS).fallback is True


def test_missing_languages_for_the_staff_note():
    assert missing_languages(CONTENT) == []
    assert missing_languages(only("en")) == ["nl", "fr", "de"]
    partial = replace(CONTENT, texts={"fr": TEXTS["fr"], "en": TEXTS["en"]})
    assert missing_languages(partial) == ["nl", "de"]


HOSTILE = AlertText(
    title="Patch {{ 7*7 }} <script>alert(1)</script>",
    what="{% for x in range(3) %}loop{% endfor %} and <b>bold</b> & {{ config }}",
    affected="Users of <img src=x onerror=alert(1)>",
    actions=("Run {{ 7*7 }}", "Type %(name)s and {name} and 100%"),
    urgency="<i>now</i>",
)


def test_staff_text_is_escaped_in_html_and_never_run_as_a_template():
    content = replace(CONTENT, texts={"en": HOSTILE})
    email = compose_email(content, "en", LINKS)
    for part in (email.subject, email.text, email.html):
        assert "{{ 7*7 }}" in part
        assert "49" not in part
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<img" not in email.html and "<b>" not in email.html and "<i>now" not in email.html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; {{ config }}" in email.html
    assert "{% for x in range(3) %}loop{% endfor %}" in email.text
    assert "Type %(name)s and {name} and 100%" in email.text
    assert "<script>alert(1)</script>" in email.text  # plain text stays as written
    news = compose_newsletter([content], "en", LINKS)
    assert "&lt;script&gt;" in news.html and "<script>" not in news.html
    assert "{{ 7*7 }}" in news.text


def test_only_web_addresses_become_links():
    content = replace(
        CONTENT,
        links=(("Bad", "javascript:alert(1)"), ("Data", "data:text/html,x")),
        cves=("CVE-2024-1<x>",),
    )
    firm = replace(FIRM, website="javascript:alert(1)", email="a@b.be?bcc=x@y.z")
    html = compose_email(content, "en", LINKS, (firm,)).html
    assert "javascript:" not in html and "data:text" not in html
    assert "mailto:a@b.be?bcc" not in html
    assert "CVE-2024-1&lt;x&gt;" in html and "cve.org/CVERecord?id=CVE-2024-1" not in html


def test_placeholders_survive_for_the_batch_sender():
    email = compose_email(CONTENT, "fr", PLACEHOLDERS, (FIRM,))
    for part in (email.text, email.html):
        assert "[[PREFERENCES]]" in part and "[[UNSUBSCRIBE]]" in part
    assert 'href="[[PREFERENCES]]"' in email.html and 'href="[[UNSUBSCRIBE]]"' in email.html
    titled = replace(CONTENT, texts={"en": replace(TEXTS["en"], title="[[NAME]] check")})
    assert "[[NAME]] check" in compose_email(titled, "en", PLACEHOLDERS).subject
    news = compose_newsletter([CONTENT], "de", PLACEHOLDERS)
    assert "[[UNSUBSCRIBE]]" in news.text and 'href="[[UNSUBSCRIBE]]"' in news.html
    assert compose_sms(CONTENT, "nl", PLACEHOLDERS).text.endswith("[[SMS_OPTOUT]]")


def test_firms_block_only_when_there_are_firms():
    without = compose_email(CONTENT, "nl", LINKS)
    assert "Wie kan helpen" not in without.text + without.html
    email = compose_email(CONTENT, "nl", LINKS, (FIRM, Firm("Other NV", "https://other.be/")))
    for part in (email.text, email.html):
        assert "WIE KAN HELPEN" in part.upper()
        assert "Geregistreerd voor de KMO-portefeuille" in part
        assert "+32 9 123 45 67" in part
        assert "Other NV" in part
    assert "Veilig &amp; Zeker BV" in email.html
    assert 'href="https://www.veilig-zeker.be"' in email.html
    assert 'href="tel:+3291234567"' in email.html
    assert 'href="mailto:hulp@veilig-zeker.be"' in email.html
    assert email.html.count("Geregistreerd voor de KMO-portefeuille") == 1  # Other NV is not
    assert "- Veilig & Zeker BV (Geregistreerd voor de KMO-portefeuille)" in email.text


# --- newsletter ----------------------------------------------------------------------------


def _item(alert_id: int, tier: str, exploited: bool, day: int, languages=("en", "nl")):
    texts = {
        lang: replace(TEXTS[lang], title=f"{lang} item {alert_id}", urgency="")
        for lang in languages
    }
    return AlertContent(
        alert_id=alert_id,
        tier=tier,
        public_url=f"https://alerts.example.be/a/{alert_id}",
        texts=texts,
        known_exploited=exploited,
        published=date(2026, 11, day),
    )


def test_an_empty_newsletter_is_never_sent():
    assert compose_newsletter([], "nl", LINKS) is None
    assert compose_newsletter((), "en", PLACEHOLDERS, (FIRM,)) is None


def test_newsletter_lists_the_most_urgent_first_in_the_readers_language():
    items = [
        _item(1, "newsletter", False, 20),
        _item(2, "newsletter", False, 25),
        _item(3, "urgent", False, 26),
        _item(4, "newsletter", True, 10, languages=("en",)),
        _item(5, "urgent", True, 1),
        _item(2, "newsletter", False, 25),  # the same alert twice is listed once
    ]
    news = compose_newsletter(items, "nl", LINKS)
    assert news.language == "nl" and news.fallback is True
    assert news.subject == "Cyberwaarschuwingen voor kmo's: 5 nieuwe waarschuwingen"
    titles = ["nl item 5", "nl item 3", "en item 4", "nl item 2", "nl item 1"]
    for part in (news.text, news.html):
        positions = [part.index(title) for title in titles]
        assert positions == sorted(positions)
        assert part.count("Nog niet in het Nederlands beschikbaar") == 1  # item 4 only
        assert "Lees de volledige waarschuwing" in part
        assert "Wie is getroffen:" in part
        assert "KMO-portefeuille" in part
    assert "1. nl item 5" in news.text and "5. nl item 1" in news.text
    assert news.text.startswith(news.subject + "\n\n")
    assert 'lang="en"' in news.html  # the English item is marked as such
    assert news.text.count("https://alerts.example.be/a/2") == 1


def test_newsletter_summary_is_one_short_paragraph():
    long_what = "word " * 200 + "\n\nSecond paragraph."
    item = replace(
        _item(1, "newsletter", False, 2), texts={"en": replace(TEXTS["en"], what=long_what)}
    )
    news = compose_newsletter([item], "en", LINKS)
    assert news.subject == "Cyber alerts for SMEs: 1 new alert"
    assert "Second paragraph." not in news.text
    assert "word word…" in news.text
    assert news.fallback is False


@pytest.mark.parametrize("language", LANGUAGES)
def test_newsletter_renders_in_every_language(language):
    news = compose_newsletter([CONTENT], language, PLACEHOLDERS, (FIRM,))
    assert news.language == language and not news.fallback
    assert KMO_LINE[language] in news.text and KMO_LINE[language] in news.html
    assert f'<html lang="{language}"' in news.html
    assert WORDING[language][2] in news.text


# --- SMS encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("é" * 160, "GSM-7", 160, 1),  # é, è, à, ä, ö, ü … are GSM-7
        ("ê" * 70, "UCS-2", 70, 1),
        ("ê" * 71, "UCS-2", 71, 2),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # ESC + € is never split
        ("🙂" * 35, "UCS-2", 70, 1),  # a surrogate pair counts 2
        ("a" * 66 + "🙂" + "a", "UCS-2", 69, 1),
        ("a" * 66 + "🙂" + "a" * 3, "UCS-2", 71, 2),
        ("a" * 66 + "🙂" + "a" * 66, "UCS-2", 134, 3),  # the pair moves to part two
    ],
)
def test_segment_boundaries(text, encoding, characters, segments):
    count = sms_segments(text)
    assert (count.encoding, count.characters, count.segments) == (encoding, characters, segments)


@pytest.mark.parametrize("character", list("€[]{}^~|\\"))
def test_extension_characters_count_two(character):
    assert sms_segments(character).characters == 2
    assert sms_segments("a" * 158 + character).segments == 1
    assert sms_segments("a" * 159 + character).segments == 2
    assert sms_segments(character).encoding == "GSM-7"


def test_unicode_characters_name_what_forces_ucs2():
    count = sms_segments("Mise à jour : ça presse — ça presse")
    assert count.encoding == "UCS-2"
    assert count.unicode_characters == ("ç", "—")
    assert sms_segments("Plain ASCII, é and ß").unicode_characters == ()


@pytest.mark.parametrize(
    ("original", "downgraded"),
    [
        ("l’alerte “maintenant” ‘ok’ „Lücke“", 'l\'alerte "maintenant" \'ok\' "Lücke"'),
        ("« urgent »", '"urgent"'),
        ("7.4–7.6 — now − later ‑ x", "7.4-7.6 - now - later - x"),
        ("wait…", "wait..."),
        ("a\u00a0b\u202fc\u2009d\te", "a b c d e"),
        ("zero\u200bwidth\u00adsoft\ufeff", "zerowidthsoft"),
        ("• step · next", "- step - next"),
        (
            "mise à jour, reçu, fenêtre, hôtel, maïs, où, Noël",
            "mise à jour, recu, fenetre, hotel, mais, où, Noel",
        ),
        ("België, ideeën, één, coördinator", "Belgie, ideeen, één, coördinator"),
        ("Größe, Übernahme, Änderung", "Größe, Übernahme, Änderung"),
        ("œuvre, cœur, Œ, ĳs", "oeuvre, coeur, OE, ijs"),
        ("À Ê Ç É", "A E Ç É"),
        ("price €5 [x] {y} ~ ^ | \\", "price €5 [x] {y} ~ ^ | \\"),
        ("emoji 🙂 and Ω ω", "emoji 🙂 and Ω ω"),  # no faithful equivalent: kept and reported
    ],
)
def test_to_gsm7_replacements(original, downgraded):
    assert to_gsm7(original) == downgraded


def test_to_gsm7_makes_belgian_text_gsm7():
    for text in TEXTS.values():
        converted = to_gsm7(f"{text.title} {text.what} {text.urgency}")
        assert sms_segments(converted).encoding == "GSM-7", converted


# --- SMS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_sms_fits_two_segments_in_every_language(language):
    sms = compose_sms(CONTENT, language, LINKS)
    assert (sms.language, sms.fallback) == (language, False)
    assert sms.segments == sms_segments(sms.text)
    assert sms.segments.encoding == "GSM-7" and sms.segments.segments <= 2
    lines = sms.text.split("\n")
    assert lines[2] == PUBLIC_URL and lines[3].endswith(" " + OPTOUT_URL)
    assert lines[0] == SMS_LABEL[language] + to_gsm7(TEXTS[language].title)
    assert lines[1] == to_gsm7(TEXTS[language].urgency)


def test_sms_wording():
    sms = compose_sms(CONTENT, "en", LINKS)
    assert sms.text == (
        f"URGENT cyber alert: {TEXTS['en'].title}\nAct today\n{PUBLIC_URL}\n"
        f"Stop SMS alerts: {OPTOUT_URL}"
    )
    fr = compose_sms(CONTENT, "fr", LINKS).text
    assert fr.startswith("Alerte cyber URGENTE: Une faille du SSL-VPN FortiGate permet")
    assert "le controle" in fr and "A traiter aujourd'hui" in fr  # downgraded to GSM-7
    quiet = compose_sms(replace(CONTENT, tier="newsletter"), "nl", LINKS).text
    assert quiet.startswith("Cyberwaarschuwing: ")


def test_a_long_title_is_shortened_to_fit():
    long = replace(TEXTS["de"], title="Sehr lange Überschrift über eine Schwachstelle " * 6)
    sms = compose_sms(replace(CONTENT, texts={"de": long, "en": TEXTS["en"]}), "de", LINKS)
    assert sms.segments.segments == 2
    first = sms.text.split("\n")[0]
    assert first.endswith("...") and len(first) < len(long.title)
    assert "Heute handeln" in sms.text  # the urgency line is kept while the title can shrink


def test_urgency_is_dropped_before_the_title_becomes_unreadable():
    links = replace(LINKS, sms_optout="https://" + "o" * 162)  # a 170-character link
    long = replace(TEXTS["en"], title="A long title about a flaw in a product " * 4)
    sms = compose_sms(replace(CONTENT, texts={"en": long}), "en", links)
    assert sms.segments.segments == 2
    assert "Act today" not in sms.text
    assert len(sms.text.split("\n")[0]) >= len("URGENT cyber alert: ") + 20
    assert sms.text.split("\n")[0].endswith("...")


def test_sms_placeholders_are_counted_at_link_length():
    sms = compose_sms(CONTENT, "en", PLACEHOLDERS)
    assert sms.text.endswith("Stop SMS alerts: [[SMS_OPTOUT]]")
    real = sms.text.replace("[[SMS_OPTOUT]]", REPORT_LINK)
    assert sms.segments == sms_segments(real)


def test_sms_fallback_and_opt_out_link_required():
    sms = compose_sms(only("en"), "fr", LINKS)
    assert (sms.language, sms.fallback) == ("en", True)
    with pytest.raises(ValueError, match="opt-out"):
        compose_sms(CONTENT, "en", replace(LINKS, sms_optout=""))


def test_sms_report_gives_staff_the_numbers_per_language():
    report = sms_report(CONTENT)
    assert list(report) == ["nl", "fr", "en", "de"]
    assert len(REPORT_LINK) == 60
    title = TEXTS["en"].title
    expected = len(f"URGENT cyber alert: {title}\nAct today\n{PUBLIC_URL}\nStop SMS alerts: ") + 60
    assert report["en"].characters == expected == 235
    assert (report["en"].encoding, report["en"].segments) == ("GSM-7", 2)
    assert all(count.segments <= 2 and count.encoding == "GSM-7" for count in report.values())
    short = replace(
        CONTENT,
        public_url="https://cert.be/a/1",
        texts={"en": replace(TEXTS["en"], title="VPN flaw", urgency="")},
    )
    assert sms_report(short)["en"] == sms_segments(
        "URGENT cyber alert: VPN flaw\nhttps://cert.be/a/1\nStop SMS alerts: " + "x" * 60
    )
    assert sms_report(short)["en"].segments == 1
    assert list(sms_report(replace(CONTENT, texts={"en": TEXTS["en"], "de": TEXTS["de"]}))) == [
        "en",
        "de",
    ]


def test_templates_use_only_variables_they_are_given(monkeypatch):
    """Rendered with StrictUndefined, a misspelt or missing variable fails instead of
    silently printing nothing."""
    from jinja2 import StrictUndefined

    from alerts import templating
    from alerts.compose import mail, sms

    def strict(template, language, **context):
        env = templating.environment(language).overlay(undefined=StrictUndefined)
        return env.get_template(template).render(**context)

    monkeypatch.setattr(mail, "render", strict)
    monkeypatch.setattr(sms, "render", strict)
    trimmed = replace(CONTENT, cves=(), links=(), published=None, tier="newsletter")
    for content in (CONTENT, trimmed, only("en")):
        for language in LANGUAGES:
            compose_email(content, language, PLACEHOLDERS, (FIRM, Firm("Bare", "")))
            compose_newsletter([content, replace(content, alert_id=1)], language, LINKS, (FIRM,))
            compose_sms(content, language, PLACEHOLDERS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_newsletter_invites_to_the_maturity_scan(language):
    news = compose_newsletter([CONTENT], language, LINKS)
    scan_link = f"{LINKS.preferences}/scan"
    assert scan_link in news.text
    assert f'href="{scan_link}"' in news.html
