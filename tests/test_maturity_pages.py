"""The maturity scan's public pages (issue 11): the form and result in every language,
errors that store nothing, the anonymous statistics consent, the PDF, and a subscriber's
kept results — product profile update, retakes and progress, consents, export and erasure."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from alerts.maturity.models import MaturityResult
from alerts.maturity.scan import UNKNOWN, load_scan
from subscribers.consent import Origin
from subscribers.models import ConsentEvent, Subscriber
from tests.subscriber_site import CSRF, SIGNUP, Site
from tests.test_firm_pages import add_firm
from tests.test_maturity import SINGLE, best_answers, worst_answers

SCAN = load_scan()
LANGUAGES = ("nl", "fr", "en", "de")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def fields(answers: dict, **extra) -> dict:
    """The form as the browser posts it."""
    data = {f"q-{question}": value for question, value in answers.items()}
    return data | extra


def technology() -> tuple[str, list[str]]:
    """The first technology question and two of its families."""
    question = next(q for q in SCAN.questions if q.kind == "technology")
    return question.id, [option.family for option in question.options[:2]]


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


def results(site: Site) -> list[MaturityResult]:
    with site.database.session() as session:
        rows = list(session.scalars(select(MaturityResult).order_by(MaturityResult.id)))
        session.expunge_all()
        return rows


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


# --- a visitor ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_form_and_the_result_in_every_language(site, language):
    page = site.client.get(f"/scan?lang={language}")
    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.text
    shown = text_of(page.text)
    for domain in SCAN.domains:
        assert domain.title.get(language) in shown
    for question in SCAN.questions:
        assert f'name="q-{question.id}"' in page.text
        assert question.text.get(language) in shown

    answer = site.submit(
        f"/scan?lang={language}", fields(worst_answers()), page=f"/scan?lang={language}"
    )
    assert answer.status_code == 200
    shown = text_of(answer.text)
    assert SCAN.level_name(0, language) in shown
    assert SCAN.kmo_note.get(language) in shown
    for domain in SCAN.domains:
        assert domain.title.get(language) in shown
    assert results(site) == []  # nothing kept without consent


def test_the_best_answers_score_the_top_level_and_no_firm_is_needed(site):
    answer = site.submit("/scan", fields(best_answers()))
    assert "Overall: Advanced (100 %)" in text_of(answer.text)
    assert "No domain is weak" in answer.text


def test_the_three_steps_are_the_advice_of_the_most_valuable_gaps(site):
    from alerts.maturity.scan import score

    answers = best_answers() | {
        "backup-offline": "no-backup",
        "mfa-email": "none",
        "admin-daily": "some",
    }
    expected = score(SCAN, answers, "en")
    shown = text_of(site.submit("/scan", fields(answers)).text)
    assert len(expected.steps) >= 1
    for step in expected.steps:
        assert step.advice in shown


def test_an_answer_that_does_not_exist_is_refused_and_nothing_is_stored(site):
    answer = site.submit(
        "/scan", fields(best_answers() | {"inventory-devices": "maybe"}, share_stats="1")
    )
    assert answer.status_code == 422
    assert "Please check the form" in answer.text
    question = SCAN.question("inventory-devices").text.get("en")
    assert f"“{question}”: choose one of the answers shown." in text_of(answer.text)
    assert 'id="q-backup-automatic-daily" name="q-backup-automatic" value="daily" checked' in (
        answer.text
    )  # the other answers are kept
    assert results(site) == []


def test_an_empty_form_asks_for_at_least_one_answer(site):
    answer = site.submit("/scan", {"share_stats": "1"})
    assert answer.status_code == 422
    assert "Answer at least one question" in answer.text
    assert results(site) == []


def test_a_form_without_its_csrf_token_is_refused(site):
    site.client.get("/scan")
    answer = site.client.post("/scan", data=fields(best_answers()))
    assert answer.status_code == 400
    assert results(site) == []


def test_the_anonymous_statistic_holds_levels_and_dimensions_only(site):
    extra = {"share_stats": "1", "region": "BE-WLG", "sector": "retail", "size_band": "bogus"}
    answer = site.submit("/scan", fields(worst_answers(), **extra))
    assert "counted, without your name" in answer.text
    [row] = results(site)
    assert row.subscriber_id is None and row.answers is None
    assert (row.region, row.sector, row.size_band) == ("BE-WLG", "retail", None)
    assert row.share_stats and not row.staff_may_view
    assert row.level == 0 and set(row.levels) == {d.id for d in SCAN.domains}
    assert row.taken_at == datetime(2026, 11, 1, tzinfo=UTC)  # the month, nothing finer


def test_one_visitor_is_counted_once_a_day(site):
    first = site.submit("/scan", fields(worst_answers(), share_stats="1", sector="retail"))
    again = site.submit("/scan", fields(worst_answers(), share_stats="1", sector="retail"))
    assert "counted, without your name" in first.text
    assert "counted in the statistics today already" in again.text
    assert len(results(site)) == 1
    other = site.browser(ip="192.0.2.99")
    site.submit("/scan", fields(best_answers(), share_stats="1"), client=other)
    assert len(results(site)) == 2  # another connection
    site.clock.advance(days=1)
    site.submit("/scan", fields(worst_answers(), share_stats="1"))
    assert len(results(site)) == 3


def test_a_visitor_downloads_the_report_made_from_the_page(site):
    page = site.submit(
        "/scan?lang=de", fields(worst_answers(), region="BE-VAN"), page="/scan?lang=de"
    )
    hidden = HIDDEN.findall(page.text)
    assert ("q-backup-offline", "no-backup") in hidden
    answer = site.client.post("/scan/report.pdf?lang=de", data=dict(hidden))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    assert "attachment" in answer.headers["content-disposition"]


def test_a_report_with_no_answers_is_a_clear_error(site):
    page = site.client.get("/scan")
    token = CSRF.search(page.text).group(1)
    answer = site.client.post("/scan/report.pdf", data={"csrf_token": token})
    assert answer.status_code == 422
    assert "Answer at least one question" in answer.text


def test_firms_for_the_weak_domains_with_the_kmo_note(site, database):
    add_firm(
        database,
        "Back-up Brigade <b>NV</b>",
        11,
        specialities=["backup-recovery"],
        languages=["en"],
        kmo_portefeuille=True,
    )
    add_firm(
        database,
        "Elsewhere BV",
        12,
        specialities=["backup-recovery"],
        regions=["BE-WLG"],
        languages=["en"],
    )
    add_firm(database, "Web Only BV", 13, specialities=["web-cms-security"], languages=["en"])
    add_firm(
        database,
        "Pending BV",
        14,
        specialities=["backup-recovery"],
        languages=["en"],
        status="pending",
    )
    answers = best_answers() | {
        q: v for q, v in worst_answers().items() if SCAN.question(q).domain == "backups"
    }
    answer = site.submit("/scan", fields(answers, region="BE-VAN"))
    shown = text_of(answer.text)
    assert "Back-up Brigade &lt;b&gt;NV&lt;/b&gt;" in answer.text  # escaped
    assert "KMO-portefeuille" in shown
    assert "Elsewhere BV" not in shown  # another region
    assert "Web Only BV" not in shown  # not what the weak domain needs
    assert "Pending BV" not in shown  # not vetted
    assert SCAN.kmo_note.get("en") in shown


# --- a subscriber ---------------------------------------------------------------------------


def _scan_path(site: Site) -> str:
    return site.subscribe_and_confirm() + "/scan"


def _subscriber(site: Site) -> Subscriber:
    with site.database.session() as session:
        row = session.scalars(select(Subscriber)).one()
        session.expunge(row)
        return row


def test_a_first_scan_starts_from_the_product_profile(site):
    path = _scan_path(site)
    page = site.client.get(path)
    assert page.status_code == 200
    # the sign-up chose fortinet-fortigate: ticked where the scan asks about it
    asked = {o.family for q in SCAN.questions if q.kind == "technology" for o in q.options}
    for family in {"fortinet-fortigate", "microsoft-exchange"} & asked:
        assert re.search(rf'value="{family}" checked', page.text)


def test_keeping_a_result_and_updating_the_product_profile(site):
    path = _scan_path(site)
    before = set(_subscriber(site).families)
    question, chosen = technology()
    data = fields(
        worst_answers() | {question: chosen}, keep="1", update_profile="1", staff_may_view="1"
    )
    answer = site.submit(path, data, page=path)
    assert answer.status_code == 303
    assert re.search(r"/scan/results/\d+\?done=profile$", answer.headers["location"])
    [row] = results(site)
    subscriber = _subscriber(site)
    assert row.subscriber_id == subscriber.id
    assert row.answers[question] == chosen and row.answers["backup-offline"] == "no-backup"
    assert row.staff_may_view and not row.share_stats and row.families_applied
    options = {o.family for o in SCAN.question(question).options}
    expected = {f for f in before if f not in options} | set(chosen)
    assert set(subscriber.families) == expected
    assert subscriber.knows_products
    with site.database.session() as session:
        methods = session.scalars(
            select(ConsentEvent.method).where(ConsentEvent.kind == "preferences")
        ).all()
    assert "maturity-scan" in methods

    page = site.client.get(answer.headers["location"])
    assert "Your result is kept and your product profile is updated." in page.text
    assert "Download the report (PDF)" in page.text
    pdf = site.client.get(answer.headers["location"].split("?")[0] + "/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_sharing_needs_a_kept_result(site):
    path = _scan_path(site)
    answer = site.submit(path, fields(worst_answers(), share_stats="1", staff_may_view="1"))
    assert answer.status_code == 200 and "This result is not kept" in answer.text
    assert "counted, without your name" not in answer.text
    assert results(site) == []


def test_a_refused_form_keeps_the_consents_ticked(site):
    path = _scan_path(site)
    data = fields(best_answers() | {"mfa-email": "maybe"}, keep="1", share_stats="1")
    answer = site.submit(path, data, page=path)
    assert answer.status_code == 422
    assert 'name="keep" value="1" checked' in answer.text
    assert 'name="share_stats" value="1" checked' in answer.text
    assert 'name="staff_may_view" value="1" checked' not in answer.text


def test_leaving_withdraws_staff_access_for_good(site):
    path = _scan_path(site)
    site.submit(path, fields(worst_answers(), keep="1", staff_may_view="1"), page=path)
    subscriber = _subscriber(site)
    site.service.leave(subscriber.id, "all", Origin("preference-centre"))
    site.service.update(
        subscriber.id,
        site.service.parse(SIGNUP, require_consent=False),
        Origin("preference-centre"),
    )  # back again
    [row] = results(site)
    assert not row.staff_may_view


def test_the_profile_is_left_alone_without_consent(site):
    path = _scan_path(site)
    before = _subscriber(site).families
    question, chosen = technology()
    answer = site.submit(path, fields(worst_answers() | {question: chosen[:1]}), page=path)
    assert answer.status_code == 200  # shown, not kept
    assert "This result is not kept" in answer.text
    assert _subscriber(site).families == before
    assert results(site) == []


def test_a_retake_shows_progress_and_the_history(site):
    path = _scan_path(site)
    first = site.submit(path, fields(worst_answers(), keep="1"), page=path)
    site.clock.advance(days=90)
    page = site.client.get(path)
    assert "Your previous answers are filled in" in page.text
    assert 'value="no-backup" checked' in page.text  # the previous answers
    second = site.submit(path, fields(best_answers(), keep="1"), page=path)
    assert second.status_code == 303
    shown = text_of(site.client.get(second.headers["location"]).text)
    assert "Since your previous scan" in shown
    assert "▲ better" in shown
    history = text_of(site.client.get(path + "/results").text)
    assert history.index("2026-11-27") < history.index("2027-02-25")  # oldest first
    assert "Advanced" in history and "Starting" in history
    older = site.client.get(first.headers["location"])
    assert "Since your previous scan" not in older.text


def test_consents_can_be_changed_and_a_result_deleted(site):
    path = _scan_path(site)
    location = site.submit(path, fields(worst_answers(), keep="1", share_stats="1"), page=path)
    result_path = location.headers["location"].split("?")[0]
    [row] = results(site)
    assert row.share_stats and not row.staff_may_view
    changed = site.submit(result_path + "/consents", {"staff_may_view": "1"}, page=result_path)
    assert changed.status_code == 303
    [row] = results(site)
    assert not row.share_stats and row.staff_may_view
    gone = site.submit(result_path + "/forget", {}, page=result_path)
    assert gone.status_code == 303
    assert results(site) == []
    assert site.client.get(result_path).status_code == 404


def test_another_subscribers_result_is_not_found(site):
    path = _scan_path(site)
    kept = site.submit(path, fields(worst_answers(), keep="1"), page=path)
    result_path = kept.headers["location"].split("?")[0]
    other = site.browser(ip="192.0.2.77")
    second = site.signup(
        client=other, email="info@andere-zaak.be", enterprise_number="0200.065.765"
    )
    assert second.status_code == 200
    other_prefs = site.confirm().headers["location"].split("?")[0]
    result_id = result_path.rsplit("/", 1)[1]
    assert other.get(f"{other_prefs}/scan/results/{result_id}").status_code == 404
    assert other.get(f"{other_prefs}/scan/results/{result_id}/report.pdf").status_code == 404
    assert site.client.get(path.replace("/preferences/", "/preferences/x")).status_code == 404


def test_kept_results_are_exported_and_erased_with_the_subscriber(site):
    path = _scan_path(site)
    site.submit(path, fields(worst_answers(), keep="1"), page=path)
    anonymous = site.submit("/scan", fields(best_answers(), share_stats="1"))
    assert anonymous.status_code == 200
    subscriber = _subscriber(site)
    exported = site.service.export(subscriber.id)
    [kept] = exported["maturity_results"]
    assert kept["answers"]["backup-offline"] == "no-backup" and kept["level"] == 0
    site.service.erase(subscriber.id, Origin("test"))
    with site.database.session() as session:
        left = session.scalars(select(MaturityResult.subscriber_id)).all()
        assert left == [None]  # only the visitor's anonymous statistic
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_a_result_of_an_earlier_question_set_shows_its_stored_levels(site):
    path = _scan_path(site)
    kept = site.submit(path, fields(worst_answers(), keep="1"), page=path)
    with site.database.session() as session:
        row = session.scalars(select(MaturityResult)).one()
        row.version = "2020-01"
    page = site.client.get(kept.headers["location"])
    assert page.status_code == 200
    assert "earlier set of questions" in page.text
    report = site.client.get(kept.headers["location"].split("?")[0] + "/report.pdf")
    assert report.status_code == 410


def test_unknown_answers_are_counted_on_the_page(site):
    answers = {q.id: UNKNOWN for q in SINGLE[:3]}
    shown = text_of(site.submit("/scan", fields(answers)).text)
    assert "You answered “I don't know” 3 times" in shown
    assert f"{len(SINGLE) - 3} questions were left unanswered" in shown


def test_a_kept_result_is_dated_by_the_services_clock(site):
    path = _scan_path(site)
    kept = site.submit(path, fields(worst_answers(), keep="1"), page=path)
    assert "Scan of 2026-11-27" in site.client.get(kept.headers["location"]).text


def test_a_skipped_domain_is_not_answered_rather_than_weak(site, database):
    add_firm(database, "Supplier Check BV", 21, specialities=["security-audit"], languages=["en"])
    answers = {q: v for q, v in best_answers().items() if SCAN.question(q).domain != "suppliers"}
    shown = text_of(site.submit("/scan", fields(answers, region="BE-VAN")).text)
    assert "Not answered" in shown
    assert "needs attention" not in shown
    assert "No domain you answered about is weak" in shown
    assert "Supplier Check BV" not in shown


def test_the_profile_update_changes_who_gets_an_alert(site):
    """A family ticked in the scan reaches the alert matching; one unticked leaves it."""
    from subscribers.audience import Targeting
    from subscribers.directory import load_index

    def urgent_for(family: str) -> set[int]:
        with site.database.session() as session:
            index = load_index(session)
        return {i for i, _ in index.recipients(Targeting("urgent", frozenset({family})))}

    path = _scan_path(site)
    subscriber = _subscriber(site)
    assert subscriber.id in urgent_for("fortinet-fortigate")  # from the sign-up
    assert subscriber.id not in urgent_for("synology")
    answers = worst_answers() | {"tech-edge": ["sophos-firewall"], "tech-storage": ["synology"]}
    site.submit(path, fields(answers, update_profile="1"), page=path)
    assert subscriber.id in urgent_for("synology")
    assert subscriber.id in urgent_for("sophos-firewall")
    assert subscriber.id not in urgent_for("fortinet-fortigate")  # asked, and unticked
