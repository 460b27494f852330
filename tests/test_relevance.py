"""The relevance engine: rules as data, multilingual signals, catalogue matching, match()."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.enrich import Context, KevEntry, Subject, enrich
from alerts.relevance.catalogue import find_families, load_catalogue
from alerts.relevance.engine import decide
from alerts.relevance.evaluate import baseline_cvss_or_kev, metrics
from alerts.relevance.match import Profile, match, match_scored
from alerts.relevance.rules import RuleHolder, load_rules
from alerts.yamlfile import DataFileError

RULES = load_rules()
CATALOGUE = load_catalogue()
SIGNALS = RULES.compiled_signals()


def decision(title: str, summary: str = "", context: Context | None = None, **fields):
    subject = Subject(title=title, summary=summary, **fields)
    facts = enrich(subject, CATALOGUE, SIGNALS, context)
    return facts, decide(facts, RULES)


def fired(result) -> set[str]:
    return {reason.rule for reason in result[1].reasons}


# ----------------------------------------------------------------------------- tiers


@pytest.mark.parametrize(
    ("case", "fields", "tier"),
    [
        (
            "exploited VPN",
            dict(
                title="FortiOS SSL-VPN heap overflow",
                known_exploited=True,
                cve_ids=("CVE-2024-21762",),
            ),
            "urgent",
        ),
        ("exploited NAS", dict(title="QNAP QTS command injection actively exploited"), "urgent"),
        (
            "exploited backup",
            dict(title="Veeam Backup & Replication deserialization", known_exploited=True),
            "urgent",
        ),
        (
            "exploited CMS plugin",
            dict(title="WordPress plugin LiteSpeed Cache privilege flaw", known_exploited=True),
            "urgent",
        ),
        (
            "browser zero-day",
            dict(
                title="Google Chrome V8 type confusion exploited in the wild",
                published=datetime(2026, 5, 1, tzinfo=UTC),
                cve_ids=("CVE-2026-1001",),
            ),
            "urgent",
        ),
        ("campaign", dict(title="Phishing campaign targeting accountants"), "urgent"),
        (
            "Windows LPE in KEV",
            dict(title="Microsoft Windows Win32k Privilege Escalation", known_exploited=True),
            "newsletter",
        ),
        (
            "old exploited desktop flaw",
            dict(
                title="Microsoft Office memory corruption",
                known_exploited=True,
                cve_ids=("CVE-2017-11882",),
                published=datetime(2024, 1, 1, tzinfo=UTC),
            ),
            "newsletter",
        ),
        (
            "patch without exploitation",
            dict(title="Multiple vulnerabilities in Microsoft Windows"),
            "newsletter",
        ),
        (
            "critical flaw, SME firewall",
            dict(title="SonicWall SonicOS buffer overflow", cvss_score=9.8),
            "newsletter",
        ),
        (
            "ICS advisory",
            dict(title="Siemens SIMATIC S7-1500 denial of service", cvss_score=9.1),
            "ignore",
        ),
        (
            "ICS even if exploited",
            dict(title="Schneider Electric Modicon PLC exploited", known_exploited=True),
            "ignore",
        ),
        ("mainframe", dict(title="IBM Integration Bus for z/OS vulnerability"), "ignore"),
        ("enterprise only", dict(title="Multiples vulnérabilités dans IBM Db2"), "ignore"),
        ("developer library", dict(title="Django SQL injection", cvss_score=9.8), "ignore"),
        ("unknown product", dict(title="Vulnerability in ObscureTool 2.3"), "ignore"),
        (
            "rejected CVE",
            dict(title="Rejected: CVE-2025-0001", facts={"state": "REJECTED"}),
            "ignore",
        ),
        (
            "news article",
            dict(title="Fortinet shares fall", url="https://www.darkreading.com/x"),
            "ignore",
        ),
        (
            "CERT weekly bulletin",
            dict(title="Bulletin d'actualité CERTFR-2026-ACT-034"),
            "newsletter",
        ),
    ],
)
def test_tiers(case, fields, tier):
    title = fields.pop("title")
    facts, result = decision(title, **fields)
    assert result.tier == tier, (case, result.score, fired((facts, result)))


def test_score_stays_within_0_and_100():
    _, high = decision(
        "FortiOS exploited in the wild ransomware campaign", known_exploited=True, cvss_score=10.0
    )
    _, low = decision("Siemens SIMATIC PLC", facts={"state": "REJECTED"})
    assert high.score == 100 and low.score == 0


def test_every_decision_explains_itself_in_four_languages():
    _, result = decision("Ivanti Connect Secure exploited", known_exploited=True)
    assert result.reasons
    for reason in result.reasons:
        assert set(reason.texts) == {"en", "nl", "fr", "de"}
        assert all(text and "{" not in text for text in reason.texts.values())
    english = [r.text("en") for r in result.reasons]
    assert any("Ivanti Connect Secure" in text for text in english)


# ----------------------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Deze kwetsbaarheid wordt actief misbruikt", "nl"),
        ("La vulnérabilité est activement exploitée", "fr"),
        ("Le CERT-FR a connaissance de tentatives d'exploitation", "fr"),
        ("Die Schwachstelle wird aktiv ausgenutzt", "de"),
        ("The flaw is being actively exploited", "en"),
        ("Microsoft is aware of limited, targeted attacks", "en"),
    ],
)
def test_exploitation_wording_in_four_languages(text, language):
    facts, _ = decision("FortiGate update", summary=text)
    assert facts.exploitation == "active", language


@pytest.mark.parametrize(
    "text",
    [
        "A proof-of-concept has been published",
        "Une preuve de concept est disponible",
        "Exploit-Code ist öffentlich verfügbar",
        "Exploitcode is publiek beschikbaar",
    ],
)
def test_proof_of_concept_wording(text):
    facts, _ = decision("QNAP QTS update", summary=text)
    assert facts.exploitation == "poc"


def test_a_denial_of_exploitation_cancels_the_wording():
    facts, _ = decision(
        "FortiOS update",
        summary="Fortinet is not aware of any exploitation. Exploited in the wild would be bad.",
    )
    assert facts.exploitation != "active"


def test_ssvc_active_counts_as_exploitation():
    facts, _ = decision("Veeam Backup flaw", facts={"ssvc_exploitation": "active"})
    assert facts.exploitation == "active"


# ----------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("Multiples vulnérabilités dans Fortinet FortiOS", "fortinet-fortigate"),
        ("Kwetsbaarheden verholpen in Microsoft Exchange Server", "microsoft-exchange"),
        ("Sicherheitslücke in QNAP QTS", "qnap"),
        ("Vulnérabilité dans les produits Cisco", "cisco-asa"),
        ("LiteSpeed Cache for WordPress", "wordpress"),
        ("Synology DiskStation Manager", "synology"),
        ("ConnectWise ScreenConnect authentication bypass", "screenconnect"),
        ("Palo Alto Networks PAN-OS GlobalProtect", "paloalto-panos"),
    ],
)
def test_families_from_names_in_titles(text, family):
    hits = find_families(CATALOGUE, title=text, summary="", vendors=[], products=[])
    assert family in [hit.family.id for hit in hits]


def test_case_sensitive_names_do_not_match_ordinary_words():
    hits = find_families(
        CATALOGUE,
        title="The outlook for windows of opportunity",
        summary="",
        vendors=[],
        products=[],
    )
    assert hits == []


def test_structured_vendor_and_product_and_cpe():
    hits = find_families(
        CATALOGUE,
        title="",
        summary="",
        vendors=["Fortinet"],
        products=["FortiOS"],
        cpes=["cpe:2.3:o:qnap:qts:5.1.0:*:*:*:*:*:*:*"],
    )
    found = {hit.family.id: hit.evidence for hit in hits}
    assert found == {"fortinet-fortigate": "vendor/product", "qnap": "cpe"}


def test_names_only_in_the_summary_are_weaker_evidence():
    facts, _ = decision("Siemens SCALANCE firmware update", summary="Runs on Windows hosts.")
    assert [hit.family.id for hit in facts.primary_families] == ["ot-ics"]


# ----------------------------------------------------------------------------- context


def test_kev_context_from_the_store_makes_an_advisory_exploited():
    context = Context(kev={"CVE-2024-3400": KevEntry(("cisa-kev",), ransomware=True)})
    facts, result = decision(
        "Vulnerability in PAN-OS GlobalProtect", context=context, cve_ids=("CVE-2024-3400",)
    )
    assert facts.known_exploited and facts.ransomware and result.tier == "urgent"
    assert "cisa-kev" in next(r.text() for r in result.reasons if r.rule == "known-exploited")


def test_epss_adds_weight():
    context = Context(epss={"CVE-2026-1": 0.93})
    facts, result = decision("SonicWall update", context=context, cve_ids=("CVE-2026-1",))
    assert facts.epss == 0.93 and "high-epss" in {r.rule for r in result.reasons}


# ----------------------------------------------------------------------------- rule files


GOOD_RULES = Path(__file__).resolve().parents[1] / "alerts" / "relevance" / "rules.yaml"


def test_a_bad_rule_file_names_the_line(tmp_path):
    broken = tmp_path / "rules.yaml"
    broken.write_text(GOOD_RULES.read_text().replace("weight: 35", "weight: lots", 1))
    with pytest.raises(DataFileError, match=r"line \d+: rules\.0\.weight"):
        load_rules(broken)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("when: {known_exploited: true}", "when: {known_exploited: true, colour: red}"), "colour"),
        (("  newsletter: 40", "  newsletter: 90"), "newsletter threshold"),
        (
            ("ignore_when_any: [enterprise-only", "ignore_when_any: [no-such-rule"),
            "unknown rule 'no-such-rule'",
        ),
        (("{wording: campaign}", "{wording: campagne}"), "undefined wording signal"),
        (
            ('"Listed as exploited in the wild ({catalogues})"', '"Listed ({catalogues.x})"'),
            "not one of",
        ),
        (('"re:cas d\'exploitation"', '"re:cas d\'(exploitation"'), "not a valid expression"),
        (("  - id: exploited-wording", "  - id: known-exploited"), "repeated"),
    ],
)
def test_rule_file_mistakes_are_rejected_with_their_line(tmp_path, change, words):
    path = tmp_path / "rules.yaml"
    text = GOOD_RULES.read_text()
    assert change[0] in text, change[0]
    edited = text.replace(*change, 1)
    path.write_text(edited)
    line = text[: text.index(change[0])].count("\n") + 1  # where the edit was made
    with pytest.raises(DataFileError, match=words) as caught:
        load_rules(path)
    assert f"line {line}:" in str(caught.value)


def test_an_invalid_edit_keeps_the_previous_rules_in_force(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD_RULES.read_text())
    holder = RuleHolder(path)
    version = holder.rules.version
    path.write_text(GOOD_RULES.read_text().replace("base: 30", "base: [", 1))
    assert "rules.yaml" in holder.reload(force=True)
    assert holder.rules.version == version
    path.write_text(GOOD_RULES.read_text().replace(f'"{version}"', '"edited"', 1))
    assert holder.reload(force=True) is None and holder.rules.version == "edited"


# ----------------------------------------------------------------------------- match


def test_match_by_the_products_a_subscriber_runs():
    profile = Profile(families=frozenset({"fortinet-fortigate"}))
    result = match_scored("urgent", ["fortinet-fortigate"], profile, CATALOGUE)
    assert result.matched and result.text("nl") == ["U gebruikt Fortinet FortiGate / FortiOS"]
    assert not match_scored("urgent", ["qnap"], profile, CATALOGUE).matched


def test_match_for_subscribers_who_do_not_know_what_they_run():
    profile = Profile(knows_products=False)
    assert match_scored("newsletter", ["microsoft-windows"], profile, CATALOGUE).matched
    assert not match_scored(
        "newsletter", ["mikrotik"], profile, CATALOGUE
    ).matched  # not common enough


def test_match_respects_tier_thresholds_and_campaigns():
    urgent_only = Profile(families=frozenset({"qnap"}), min_tier="urgent")
    assert not match_scored("newsletter", ["qnap"], urgent_only, CATALOGUE).matched
    assert not match_scored(
        "ignore", ["qnap"], Profile(families=frozenset({"qnap"})), CATALOGUE
    ).matched
    everyone = match_scored("urgent", [], Profile(families=frozenset({"qnap"})), CATALOGUE)
    assert everyone.matched and "every kind" in everyone.text()[0]


# ----------------------------------------------------------------------------- metrics


def test_metrics_and_baselines():
    report = metrics(
        [
            ("urgent", "urgent"),
            ("urgent", "newsletter"),
            ("ignore", "ignore"),
            ("newsletter", "ignore"),
            ("ignore", "urgent"),
        ]
    )
    assert report["n"] == 5
    assert report["confusion"]["urgent"] == {"urgent": 1, "newsletter": 1, "ignore": 0}
    assert report["per_tier"]["urgent"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert report["relevant"] == {"precision": 0.667, "recall": 0.667, "support": 3}
    facts, _ = decision("Unknown thing", cvss_score=7.5)
    assert baseline_cvss_or_kev(facts) == "newsletter"


def test_match_takes_a_stored_advisory():
    from types import SimpleNamespace

    advisory = SimpleNamespace(tier="urgent", families=["qnap"])
    assert match(advisory, Profile(families=frozenset({"qnap"}))).matched
    assert not match(SimpleNamespace(tier=None, families=None), Profile()).matched


def test_a_name_inside_a_longer_name_does_not_count():
    hits = find_families(
        CATALOGUE,
        title="Cisco IOS XR Software DVMRP memory exhaustion",
        summary="",
        vendors=[],
        products=[],
    )
    assert [hit.family.id for hit in hits] == ["enterprise-software"]  # not IOS, not Apple iOS


def test_apple_ios_is_case_sensitive():
    hits = find_families(
        CATALOGUE, title="Apple iOS and iPadOS WebKit flaw", summary="", vendors=[], products=[]
    )
    assert "apple" in [hit.family.id for hit in hits]


# ----------------------------------------------------------------------------- review cases


@pytest.mark.parametrize(
    ("cpe", "family"),
    [
        ("cpe:2.3:a:obscurevendor:tool:1.0:*:*:*:*:*:*:*", None),
        ("cpe:2.3:a:someone:seo_plugin:2.1:*:*:*:*:wordpress:*:*", "wordpress"),
        ("cpe:/a:trendmicro:apex_one:2019", "security-software"),
        ("cpe:2.3:o:ibm:z\\/os:2.5:*:*:*:*:*:*:*", "mainframe"),
    ],
)
def test_cpe_names_2_2_and_2_3(cpe, family):
    hits = find_families(CATALOGUE, title="", summary="", vendors=[], products=[], cpes=[cpe])
    found = [hit.family.id for hit in hits]
    assert (family in found) if family else found == []


@pytest.mark.parametrize(
    "text",
    [
        "De AVG verplicht organisaties tot melding",  # Dutch for GDPR
        "Acme Holdings plc reported an incident",
        "They curl up; the horde in my cloud of bamboo",
        "Check the flask and the jackson report",
    ],
)
def test_ordinary_words_are_not_products(text):
    assert find_families(CATALOGUE, title=text, summary="", vendors=[], products=[]) == []


def test_vendor_names_with_company_suffixes():
    hits = find_families(
        CATALOGUE, title="", summary="", vendors=["Fortinet, Inc."], products=["FortiOS"]
    )
    assert [hit.family.id for hit in hits] == ["fortinet-fortigate"]


def test_oracle_java_is_not_enterprise_software():
    hits = find_families(CATALOGUE, title="", summary="", vendors=["Oracle"], products=["Java SE"])
    assert [hit.family.id for hit in hits] == ["other-desktop-apps"]


@pytest.mark.parametrize(
    "text",
    [
        "Fortinet is not aware of active exploitation of this flaw",
        "Deze kwetsbaarheid kan worden misbruikt door een aanvaller",
        "Cette vulnérabilité pourrait être activement exploitée",
        "Es ist nicht bekannt, dass die Lücke aktiv ausgenutzt wird",
        "Il n'y a pas d'exploitation active connue",
    ],
)
def test_denied_or_hypothetical_exploitation_is_not_exploitation(text):
    facts, _ = decision("FortiOS update", summary=text)
    assert facts.exploitation is None


def test_a_point_of_contact_is_not_a_proof_of_concept():
    facts, _ = decision("FortiOS update", summary="Contact your POC at the vendor")
    assert facts.exploitation is None


def test_a_broken_staff_rule_file_falls_back_to_the_packaged_rules(tmp_path):
    broken = tmp_path / "rules.yaml"
    broken.write_text("base: [\n")
    holder = RuleHolder(broken, fallback=GOOD_RULES)
    assert holder.rules.version == RULES.version
    with pytest.raises(DataFileError):
        RuleHolder(broken)  # without a fallback the error is the caller's
