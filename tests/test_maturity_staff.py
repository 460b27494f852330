"""The staff page of the maturity scan (issue 11): anonymous statistics that show only what
the suppression rule releases, in the reader's language, and the results SMEs agreed to
let staff read, each reading audited. On both databases."""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import select

from alerts.maturity import stats
from alerts.maturity.scan import check_answers, load_scan, score
from alerts.maturity.service import Consents, Dimensions
from alerts.relevance.catalogue import load_catalogue
from alerts.staff.maturity import lowest, weakest
from alerts.staff.models import AuditEvent
from alerts.templating import gettext
from subscribers.consent import Origin
from subscribers.models import Subscriber
from tests.subscriber_site import SIGNUP, Site
from tests.test_firm_pages import login

SCAN = load_scan(catalogue=load_catalogue())
SINGLE = [q for q in SCAN.questions if q.kind == "single"]
WEAK = ("backups", "mfa", "email")  # worst answers there, best elsewhere: level 2 overall
HOSTILE = "<script>alert('sme')</script> BV"


def answers(worst_in: tuple[str, ...] = (), everywhere: bool = False) -> dict[str, str]:
    """Best answers, except the lowest-scoring real answer in the domains named."""
    chosen = {}
    for question in SINGLE:
        real = [a for a in question.answers if not a.unknown]
        low = everywhere or question.domain in worst_in
        pick = min(real, key=lambda a: a.points) if low else max(real, key=lambda a: a.points)
        chosen[question.id] = pick.id
    return chosen


BEST = score(SCAN, answers())
WORST = score(SCAN, answers(everywhere=True))
MIXED = score(SCAN, answers(WEAK))


@pytest.fixture
def site(settings, database):
    return Site(settings, database)


@contextmanager
def last_month(site: Site):
    """Results taken last month: the statistics are a monthly release, so this month's
    page holds them (those taken this month wait for the next release)."""
    today = site.clock.now
    site.clock.now = today - timedelta(days=40)
    try:
        yield
    finally:
        site.clock.now = today


def counted(site: Site, result, count: int, **dimensions) -> None:
    with last_month(site):
        for _ in range(count):
            site.app.state.scans.save_anonymous(result, Dimensions(**dimensions))


def subscriber(site: Site, n: int, status: str = "active", **changes) -> int:
    """A subscriber (confirmed unless told otherwise: staff read only subscribed SMEs)."""
    data = SIGNUP | {"email": f"owner{n}@sme{n}.be", "organisation": f"SME {n}"} | changes
    subscriber_id = site.service.signup(site.service.parse(data), Origin("web-form"))
    with site.database.session() as session:
        session.get(Subscriber, subscriber_id).status = status
    return subscriber_id


def shared(site: Site, subscriber_id: int, given: dict, staff: bool = True, result=None) -> int:
    result = result or score(SCAN, given)
    consents = Consents(keep=True, share_stats=True, staff_may_view=staff)
    checked = check_answers(SCAN, given)
    with last_month(site):
        saved = site.app.state.scans.save_for(
            subscriber_id, result, checked, consents, Origin("web-form")
        )
    return saved.result_id


def section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def groups(html: str, dimension: str) -> dict[str, tuple[str, int, float]]:
    """code -> (label, count, mean level) of the rows a dimension's table shows."""
    rows = re.findall(
        r'<tr data-group="([^"]+)">\s*<th scope="row">([^<]*)</th>\s*'
        r'<td class="num count">(\d+)</td>\s*<td class="num level">([\d.,]+)</td>',
        section(html, f"by-{dimension}"),
    )
    return {code: (label, int(count), _number(level)) for code, label, count, level in rows}


def _number(text: str) -> float:
    """A mean as the page writes it: 2.5 in English, 2,5 in nl/fr/de."""
    return float(text.replace(",", "."))


def domain_means(html: str) -> dict[str, tuple[float, bool]]:
    """domain -> (mean, highlighted as weakest) of the overall table."""
    rows = re.findall(
        r'<tr data-domain="([\w-]+)"( class="weakest")?>.*?<span class="mean">([\d.]+)</span>',
        section(html, "overall"),
        re.S,
    )
    return {domain: (float(mean), bool(weak)) for domain, weak, mean in rows}


def group_weakest(html: str, dimension: str, code: str) -> list[str]:
    row = re.search(rf'<tr data-group="{code}">.*?</tr>', section(html, f"by-{dimension}"), re.S)
    return re.findall(r'<td class="num weakest" data-domain="([\w-]+)">', row.group(0))


def audits(site: Site, result_id: int) -> list[AuditEvent]:
    with site.database.session() as session:
        query = select(AuditEvent).where(AuditEvent.subject == f"maturity-result:{result_id}")
        rows = list(session.scalars(query.order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


# --- access ---------------------------------------------------------------------------------


def test_visitors_are_sent_to_the_login_page(site):
    counted(site, BEST, 10, sector="retail")
    result_id = shared(site, subscriber(site, 1), answers())
    for path in ("/staff/maturity", f"/staff/maturity/results/{result_id}"):
        answer = site.client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/staff/login?next={path}"
    assert audits(site, result_id) == []


# --- the statistics -------------------------------------------------------------------------


def test_nine_results_show_nothing_but_not_enough(site):
    counted(site, BEST, 9, sector="retail", size_band="2-9", region="BE-VAN")
    login(site, "editor")
    answer = site.client.get("/staff/maturity")
    assert answer.status_code == 200
    html = answer.text
    assert 'id="not-enough"' in html
    assert "statistics are shown from 10 results on" in html
    for name in ("overall", "by-sector", "by-size_band", "by-region"):
        assert section(html, name) == "", name
    assert "fewer than 10 results" in html  # the version's count is not given either
    assert not re.search(r"\b9\b", html.replace(SCAN.version, ""))
    assert "Wholesale and retail" not in html and "Antwerp" not in html


def test_overall_domain_and_group_means_match_hand_computed_values(site):
    # Scored by hand: every level 4; every level 0; level 0 in backups, mfa and email and 4
    # elsewhere, which is (38 - 13) / 38 = 65.8 % of the weighted points: level 2.
    assert (BEST.level, set(BEST.levels.values())) == (4, {4})
    assert (WORST.level, set(WORST.levels.values())) == (0, {0})
    assert MIXED.level == 2 and MIXED.percent == 65.8
    assert {d: lv for d, lv in MIXED.levels.items() if lv == 0} == dict.fromkeys(WEAK, 0)
    counted(site, BEST, 10, sector="retail", size_band="2-9", region="BE-VAN")
    counted(site, WORST, 5, sector="construction", size_band="2-9", region="BE-VAN")
    counted(site, MIXED, 5, sector="construction", size_band="2-9", region="BE-VAN")
    login(site, "editor")
    html = site.client.get("/staff/maturity").text

    assert "Results counted: 20" in html
    # (10 × 4 + 5 × 0 + 5 × 2) / 20 = 2.5; weak domains (40 + 0 + 0) / 20, others 60 / 20
    assert re.search(r'<strong id="mean-level">2\.5</strong>', html)
    means = domain_means(html)
    assert list(means) == [d.id for d in SCAN.domains]
    assert {d: m for d, (m, _) in means.items()} == {
        d.id: 2.0 if d.id in WEAK else 3.0 for d in SCAN.domains
    }
    assert {d for d, (_, weak) in means.items() if weak} == set(WEAK)
    assert "Weakest domains, for awareness campaigns:</strong> Backups, " in html
    # retail: 4.0 everywhere; construction: (5 × 0 + 5 × 2) / 10 = 1.0 overall, 0.0 in the
    # weak domains and (0 + 5 × 4) / 10 = 2.0 elsewhere
    assert groups(html, "sector") == {
        "retail": ("Wholesale and retail", 10, 4.0),
        "construction": ("Construction", 10, 1.0),
    }
    assert groups(html, "size_band") == {"2-9": ("2 to 9 employees", 20, 2.5)}
    assert groups(html, "region") == {"BE-VAN": ("Antwerp", 20, 2.5)}
    construction = re.search(r'<tr data-group="construction">.*?</tr>', html, re.S).group(0)
    cells = re.findall(r'data-domain="([\w-]+)">([\d.]+)', construction)
    assert cells == [(d.id, "0.0" if d.id in WEAK else "2.0") for d in SCAN.domains]
    assert group_weakest(html, "sector", "construction") == list(WEAK)  # ties all marked
    assert group_weakest(html, "sector", "retail") == []  # all equal: none stands out


def test_the_weakest_domains_break_ties_by_weight_then_scan_order():
    means = [(d.id, 2.0) for d in SCAN.domains]
    assert weakest(means, SCAN) == set() and lowest(means) == set()  # nothing stands out
    means = [(d.id, 0.5 if d.id == "suppliers" else 1.0) for d in SCAN.domains]
    assert weakest(means, SCAN) == {"suppliers", "backups", "mfa"}  # weights 2; 5, 5
    assert weakest(list(reversed(means)), SCAN) == {"suppliers", "backups", "mfa"}
    assert lowest(means) == {"suppliers"}
    assert lowest([("a", 1.0), ("b", 0.0), ("c", 0.0)]) == {"b", "c"}


def _shown_counts(html: str) -> dict[str, dict[str, int]]:
    return {
        dimension: {code: count for code, (_, count, _) in groups(html, dimension).items()}
        for dimension in stats.DIMENSIONS
    }


def _assert_released_only(site: Site, html: str, total: int) -> None:
    """The page shows exactly the groups aggregate() released, and what is hidden in each
    dimension is 0 or at least k results."""
    released = site.app.state.scans.statistics(SCAN.version)
    expected = {dimension: {} for dimension in stats.DIMENSIONS}
    for group in released.groups:
        expected[group.dimension][group.group] = group.count
    assert _shown_counts(html) == expected
    for counts in expected.values():
        hidden = total - sum(counts.values())
        assert hidden == 0 or hidden >= stats.MIN_GROUP, counts


def test_small_sectors_never_appear_and_their_count_cannot_be_derived(site):
    counted(site, BEST, 12, sector="retail", size_band="2-9", region="BE-VAN")
    counted(site, WORST, 9, sector="construction", size_band="2-9", region="BE-VAN")
    counted(site, MIXED, 4, sector="ict", size_band="2-9", region="BE-VAN")
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    assert "Results counted: 25" in html
    _assert_released_only(site, html, 25)
    assert groups(html, "sector") == {"retail": ("Wholesale and retail", 12, 4.0)}
    assert "Construction" not in html and "ICT and media" not in html
    counts = [int(c) for c in re.findall(r'<td class="num count">(\d+)</td>', html)]
    assert 9 not in counts and 4 not in counts and 13 not in counts  # 13 = 9 + 4 left over


def test_complementary_suppression_hides_a_large_group_too(site):
    # 12 / 11 / 4: showing 12 and 11 would leave 4 to subtraction, so 11 goes as well
    counted(site, BEST, 12, sector="retail", size_band="2-9", region="BE-VAN")
    counted(site, WORST, 11, sector="construction", size_band="2-9", region="BE-VAN")
    counted(site, MIXED, 4, sector="ict", size_band="2-9", region="BE-VAN")
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    _assert_released_only(site, html, 27)
    assert groups(html, "sector") == {"retail": ("Wholesale and retail", 12, 4.0)}
    counts = [int(c) for c in re.findall(r'<td class="num count">(\d+)</td>', html)]
    assert sorted(counts) == [12, 27, 27]  # retail; one size band; one region
    assert "Construction" not in html


def test_the_suppression_rule_is_explained_with_k(site):
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    explained = re.search(r'<p class="notice" id="suppression">(.*?)</p>', html, re.S).group(1)
    assert "fewer than 10 results is not shown" in explained
    assert "Nothing at all is shown while fewer than 10 results" in explained


def test_labels_and_titles_in_the_readers_language(site):
    counted(site, BEST, 10, sector="retail", size_band="10-49", region="BE-VAN")
    counted(site, WORST, 10, sector="retail", size_band="10-49", region=None)
    login(site, "editor")
    html = site.client.get("/staff/maturity?lang=nl").text
    regions = groups(html, "region")
    assert regions["BE-VAN"][0] == "Antwerpen"
    assert regions["unknown"][0] == gettext("nl", "Not given")
    assert list(regions) == ["BE-VAN", "unknown"]  # "not given" last
    assert groups(html, "size_band")["10-49"][0] == "10 tot 49 werknemers"
    assert groups(html, "sector")["retail"][0] == "Handel (groot- en kleinhandel)"
    assert escape(SCAN.domain("inventory").title.nl) in section(html, "overall")
    assert SCAN.level_name(3, "nl") in html  # the scale's level names
    french = site.client.get("/staff/maturity?lang=fr").text
    assert groups(french, "region")["BE-VAN"][0] == "Anvers"


def test_an_unknown_version_shows_the_empty_state(site):
    counted(site, BEST, 10, sector="retail")
    login(site, "editor")
    for version in ("1999-01", "<b>x</b>", "x" * 500, "'; DROP TABLE maturity_results; --"):
        answer = site.client.get("/staff/maturity", params={"version": version})
        assert answer.status_code == 200, version
        assert 'id="empty"' in answer.text and section(answer.text, "overall") == ""
    assert "&lt;b&gt;x&lt;/b&gt;" in site.client.get("/staff/maturity?version=<b>x</b>").text
    known = site.client.get("/staff/maturity", params={"version": SCAN.version}).text
    assert "Results counted: 10" in known
    assert f'<option value="{SCAN.version}" selected>{SCAN.version} (10 results)' in known


def test_versions_are_never_pooled_and_the_newest_is_the_default(site):
    older = dataclasses.replace(WORST, version="2025-01")
    counted(site, older, 12, sector="retail")
    counted(site, BEST, 10, sector="retail")
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    assert SCAN.version > "2025-01"
    assert "Results counted: 10" in html and '<strong id="mean-level">4.0</strong>' in html
    old = site.client.get("/staff/maturity?version=2025-01").text
    assert "Results counted: 12" in old and '<strong id="mean-level">0.0</strong>' in old


def test_no_results_at_all(site):
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    assert "No results have been counted yet." in html
    assert "No subscriber has shared a result with staff." in html


# --- results shared with staff --------------------------------------------------------------


def test_only_consenting_subscribers_are_listed_and_readable(site):
    given = answers(WEAK) | {"tech-edge": ["fortinet-fortigate", "soho-routers"]}
    agreed = shared(site, subscriber(site, 1, organisation="Bakkerij Agreed"), given)
    private = shared(site, subscriber(site, 2, organisation="Private BV"), answers(), staff=False)
    email = login(site, "editor")
    listing = section(site.client.get("/staff/maturity").text, "shared")
    assert "Bakkerij Agreed" in listing and f"/staff/maturity/results/{agreed}" in listing
    assert "Private BV" not in listing and f"/staff/maturity/results/{private}" not in listing
    assert f"2 – {SCAN.level_name(2, 'en')}" in listing  # the overall level
    assert "2026-10-18" in listing  # the date taken (last month, see `shared`)

    page = site.client.get(f"/staff/maturity/results/{agreed}")
    assert page.status_code == 200
    html = page.text
    assert '<span id="organisation">Bakkerij Agreed</span>' in html
    question = SCAN.question("backup-offline")
    answer = question.answer(given["backup-offline"])
    assert escape(question.text.en) in html and escape(answer.text.en) in html
    assert "Fortinet FortiGate, A router of another brand (TP-Link, Netgear" in html
    assert "Not answered" in html  # the other technology questions
    assert "65.8 %" in html and "0.0 %" in html and "100.0 %" in html
    [event] = audits(site, agreed)
    assert (event.action, event.actor) == ("view-maturity-result", email)

    french = site.client.get(f"/staff/maturity/results/{agreed}?lang=fr").text
    assert escape(question.text.fr) in french and escape(answer.text.fr) in french
    assert escape(SCAN.domain("backups").title.fr) in french
    assert len(audits(site, agreed)) == 2  # every view leaves a trace

    assert site.client.get(f"/staff/maturity/results/{private}").status_code == 404
    assert site.client.get("/staff/maturity/results/99999").status_code == 404
    assert audits(site, private) == [] and audits(site, 99999) == []


def test_withdrawing_consent_closes_the_page(site):
    person = subscriber(site, 3, organisation="Changed Mind")
    result_id = shared(site, person, answers())
    login(site, "approver")
    assert site.client.get(f"/staff/maturity/results/{result_id}").status_code == 200
    site.app.state.scans.set_consents(person, result_id, share=True, staff=False)
    answer = site.client.get(f"/staff/maturity/results/{result_id}")
    assert answer.status_code == 404 and "There is no such page." in answer.text
    assert "Changed Mind" not in answer.text
    assert "Changed Mind" not in site.client.get("/staff/maturity").text
    assert len(audits(site, result_id)) == 1  # the view before, not the refusal


def test_leaving_the_subscription_ends_staff_access(site):
    person = subscriber(site, 5, organisation="Gone Away")
    result_id = shared(site, person, answers())
    site.service.leave(person, "all", Origin("preference-centre"))
    login(site, "editor")
    assert site.client.get(f"/staff/maturity/results/{result_id}").status_code == 404
    assert "Gone Away" not in site.client.get("/staff/maturity").text


def test_a_hostile_organisation_name_is_escaped(site):
    result_id = shared(site, subscriber(site, 4, organisation=HOSTILE), answers())
    login(site, "editor")
    for path in ("/staff/maturity", f"/staff/maturity/results/{result_id}"):
        html = site.client.get(path).text
        assert "<script>" not in html, path
        assert "&lt;script&gt;alert(&#39;sme&#39;)&lt;/script&gt; BV" in html, path


def test_a_result_of_an_older_question_set_shows_its_stored_levels_only(site):
    old = dataclasses.replace(MIXED, version="2025-01")
    result_id = shared(site, subscriber(site, 5), answers(WEAK), result=old)
    login(site, "editor")
    html = site.client.get(f"/staff/maturity/results/{result_id}").text
    assert 'id="other-version"' in html and "2025-01" in html
    assert 'id="answers"' not in html
    assert escape(SCAN.question("backup-offline").text.en) not in html
    assert SCAN.domain("backups").title.en in html and "65.8 %" in html
    assert SCAN.level_name(2, "en") not in html  # the old set's level names are unknown
    assert len(audits(site, result_id)) == 1


# --- one release a month, one result per SME --------------------------------------------


def test_this_months_results_wait_for_the_next_release(site):
    counted(site, BEST, 10, sector="retail")
    for _ in range(5):  # taken today: not in this month's figures
        site.app.state.scans.save_anonymous(WORST, Dimensions(sector="retail"))
    login(site, "editor")
    html = site.client.get("/staff/maturity").text
    assert "Results counted: 10" in html
    assert "1 November 2026" in html  # results taken before the release date
    site.clock.advance(days=10)  # December: the next release
    assert "Results counted: 15" in site.client.get("/staff/maturity").text


def test_a_subscriber_who_retakes_the_scan_counts_once(site):
    """Ten shared retakes of one SME must not fill a group of ten on their own."""
    person = subscriber(site, 7, sector="finance")
    for _ in range(10):
        shared(site, person, answers(WEAK))
    counted(site, BEST, 10, sector="retail")
    statistics = site.app.state.scans.statistics(SCAN.version)
    assert statistics.total.count == 11
    assert "finance" not in {group.group for group in statistics.groups}
    login(site, "editor")
    assert "Results counted: 11" in site.client.get("/staff/maturity").text


def test_a_domain_answered_by_too_few_has_no_mean(site):
    skipped = {q: a for q, a in answers().items() if SCAN.question(q).domain != "suppliers"}
    counted(site, score(SCAN, skipped), 12, sector="retail")
    counted(site, WORST, 3, sector="retail")  # only 3 answered suppliers (level 0)
    statistics = site.app.state.scans.statistics(SCAN.version)
    assert dict(statistics.total.domains)["suppliers"] is None
    assert dict(statistics.total.domains)["backups"] is not None
    login(site, "editor")
    assert 'data-domain="suppliers">—' in site.client.get("/staff/maturity").text


def test_means_are_written_the_readers_way(site):
    counted(site, MIXED, 10, sector="retail")
    login(site, "editor")
    level = stats.aggregate([(None, None, None, MIXED)] * 10).total.level
    english = section(site.client.get("/staff/maturity").text, "overall")
    dutch = section(site.client.get("/staff/maturity?lang=nl").text, "overall")
    assert f">{level:.1f}<" in english
    assert f">{level:.1f}<".replace(".", ",") in dutch
