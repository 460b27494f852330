"""Fuzzing every form and JSON endpoint (issue 10, "Security").

Every POST route of the app is read from the app itself and must be classified in TARGETS
(a new route fails `test_every_post_route_is_classified` until it is). Each target is sent
invalid and oversized input with hypothesis — random text (all of unicode, control
characters, NUL), values of about 1 MB, missing, duplicated and unknown fields, thousands
of fields, a file where text is expected, JSON or raw bytes where a form is expected, and
malformed JSON and forged signatures for the provider webhooks — by the right user: nobody
for the public pages, a logged-in administrator with a valid CSRF token for the staff pages
(so the request reaches validation instead of being refused by the CSRF check). Every
example must answer 4xx, a page again (200) or a local redirect, never 5xx, and leave every
table of the database and the outbox exactly as they were. `test_a_bad_csrf_token_is_refused`
keeps the other side: a form that is right in everything but its token gets 400/403.

Inputs are invalid by construction: each target "poisons" one field with a value its
validator must refuse (a missing consent box, a wrong current password, an unknown tier...)
or calls an id or token that does not exist, while hypothesis mutates everything else.

The product bugs this fuzzing found (ids past 64 bits, non-digit "digits", non-ASCII link
tokens, NUL characters on PostgreSQL) are fixed; the tests at the end of the module pin
each of them.

Why SQLite only for the fuzzing: it snapshots every table twice per example (hundreds of
examples), which takes seconds on SQLite and would take minutes against a fresh PostgreSQL
database; and the properties fuzzed (status codes, nothing stored) are decided by the
application's own validation, the same code on both databases. What differs — PostgreSQL
refuses NUL characters in text, which SQLite stores — is covered on both databases by the
table-driven `test_nul_characters_never_cause_a_server_error` at the end.

The examples are derandomized, so every run sends the same input (a green suite stays
green). For an exploratory run: ALERTS_FUZZ_RANDOM=1 ALERTS_FUZZ_EXAMPLES=500 pytest ...
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import MetaData, select

from alerts.curation import editing, lifecycle
from alerts.feeds import load_registry, sync_feeds
from alerts.maturity.scan import load_scan
from alerts.referrals import directory
from alerts.referrals.links import firm_link
from alerts.referrals.models import STATUSES
from alerts.referrals.validation import parse_firm
from alerts.referrals.web import store_correction
from alerts.settings import load_settings
from alerts.staff import passwords
from alerts.staff.models import ROLES, StaffUser
from alerts.store import Database
from alerts.web.webhooks import twilio_signature
from subscribers import options
from subscribers.consent import NOTICE_VERSION
from subscribers.models import Subscriber
from subscribers.validation import as_bool
from subscribers.webhooks import sendgrid_suppressions, twilio_suppressions
from tests.subscriber_site import CSRF, SIGNUP, Site
from tests.test_curation import GOOD, _advisory, _login, _user
from tests.test_staff_matrix import _flatten, walk_routes

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin@gov.example"
OTHER = "other@gov.example"
TWILIO_TOKEN = "fuzz-twilio-auth-token-0123456789"
PUBLIC_URL = "http://127.0.0.1:8000"  # the default; Twilio signs this address
FORM = {"content-type": "application/x-www-form-urlencoded"}
HUGE_BYTES = 1_100_000  # "about 1 MB" once encoded
RANDOM = bool(os.environ.get("ALERTS_FUZZ_RANDOM"))
EXAMPLES = int(os.environ.get("ALERTS_FUZZ_EXAMPLES", "25"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,  # no .hypothesis folder in the project; derandomized runs replay anyway
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
CSRF_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 3, 6))

# --------------------------------------------------------------------------- strategies

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
CONTROL = st.text(alphabet=st.characters(max_codepoint=0x9F, categories=("Cc",)), min_size=1)
WHITESPACE = st.text(alphabet=" \t\r\n\x0b\x0c\u00a0\u2003\u3000", max_size=12)
NASTY = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n\r\n",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\U0001f600" * 40,
    "e\u0301" * 60,
    "𝕏𝔂𝔃",
    "../../../../etc/passwd",
    "%00",
    "%",
    "+",
    "&=&=",
    "<script>alert(1)</script>",
    "' OR '1'='1' --",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "-1",
    "0",
    "1e309",
    "NaN",
    "null",
    "true",
    "[]",
    "{}",
    "x" * 5000,
)
VALUE = st.one_of(
    TEXT,
    CONTROL,
    st.sampled_from(NASTY),
    st.integers().map(str),
    st.floats().map(str),
    TEXT.map(lambda text: text * 40),
)
# Hypothesis starts from the smallest example: keep most of a form as it was.
OPS = ("keep", "keep", "keep", "replace", "replace", "drop", "duplicate")
SHAPES = ("form",) * 14 + ("huge", "many", "multipart", "bad-multipart", "json", "raw", "text")

Poison = Callable[[list[tuple[str, str]]], list[tuple[str, str]]]
IDENTITY: st.SearchStrategy[Poison] = st.just(lambda pairs: pairs)


def set_field(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[Poison]:
    """Every `name` field replaced by exactly one drawn value."""
    return values.map(lambda value: lambda pairs: _drop(pairs, name) + [(name, value)])


def drop(*names: str) -> st.SearchStrategy[Poison]:
    return st.just(lambda pairs: _drop(pairs, *names))


def _drop(pairs, *names):
    return [(name, value) for name, value in pairs if name not in names]


@st.composite
def mutated(draw, base: dict, keep: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The base form, each field kept, replaced, dropped or repeated; plus unknown fields.
    `keep`: fields checked before everything else, kept so the rest is validated too."""
    pairs: list[tuple[str, str]] = []
    for name, value in base.items():
        values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        op = "keep" if name in keep else draw(st.sampled_from(OPS))
        if op == "keep":
            pairs += [(name, v) for v in values]
        elif op == "replace":
            pairs.append((name, draw(VALUE)))
        elif op == "duplicate":
            extra = draw(st.lists(VALUE, min_size=1, max_size=3))
            pairs += [(name, v) for v in values + extra]
    names = st.one_of(st.sampled_from(sorted(base) or ["x"]), TEXT)
    pairs += draw(st.lists(st.tuples(names, VALUE), max_size=5))
    return list(draw(st.permutations(pairs)))


def segment(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A path segment (kept on its route: never empty, '.' or '..')."""
    return values.filter(lambda v: v not in ("", ".", "..")).map(lambda v: quote(v, safe=""))


def junk_tokens(real: str | None = None, sealed: bool = False) -> st.SearchStrategy[str]:
    """Tokens that are not a valid signed link: random, or a real one tampered with.
    `sealed`: the route reads Signer.seal() tokens (non-ASCII ones once crashed it:
    test_sealed_links_with_non_ascii_characters_are_404)."""
    random = st.one_of(TEXT, st.sampled_from(NASTY), st.integers().map(str))
    tokens = random
    if real is not None:
        tampered = st.one_of(
            st.integers(4, len(real) - 1).map(lambda n: real[:-n]),
            st.sampled_from("ABCxyz019-_")
            .filter(lambda c: c != real[0])
            .map(lambda c: c + real[1:]),
            TEXT.filter(bool).map(lambda text: text + real),
            TEXT.filter(bool).map(lambda text: real + "." + text),
        )
        tokens = st.one_of(random, tampered).filter(lambda token: token != real)
    return segment(tokens)


def _in_range(text: str, taken: set[int]) -> bool:
    """Not a number FastAPI reads as an existing id (any other, even past 64 bits, is fine:
    test_integer_path_parameters_beyond_64_bits_are_4xx)."""
    try:
        number = TypeAdapter(int).validate_python(text)
    except ValidationError:
        return True
    return number not in taken


def missing_ids(*taken: int) -> st.SearchStrategy[str]:
    """Path values for an integer id that names nothing: other numbers, or not numbers."""
    numbers = st.integers(-(2**70), 2**70).filter(lambda n: n not in taken).map(str)
    words = st.one_of(TEXT, st.sampled_from(NASTY)).filter(lambda t: _in_range(t, set(taken)))
    return segment(st.one_of(numbers, words))


def not_in(allowed, values: st.SearchStrategy[str] = TEXT) -> st.SearchStrategy[str]:
    return values.filter(lambda value: value not in allowed)


def _ids_naming_nothing(taken: set[int]) -> st.SearchStrategy[str]:
    def names_nothing(value: str) -> bool:
        parts = [part.strip() for part in value.split(",")]
        return not any(p.isascii() and p.isdigit() and int(p[:19]) in taken for p in parts)

    return st.one_of(VALUE, st.integers(0, 10**6).map(str)).filter(names_nothing)


# --------------------------------------------------------------------------- the world


@dataclass(repr=False)
class World:
    site: Site
    staff: TestClient  # an administrator, logged in
    staff_token: str
    public: TestClient  # nobody
    public_token: str
    login: TestClient  # nobody, from another address (its failed logins are counted)
    login_token: str
    foreign_token: str  # a genuine form token, for another browser's cookie
    webhook: TestClient
    private_key: ec.EllipticCurvePrivateKey
    preferences: str
    data: str
    unsubscribe: str
    optout: str
    sms_code: str
    firm_token: str
    alert: int
    firm: int
    admin: int
    other_user: int
    correction: int
    queued: int
    used: int
    feeds: frozenset[str]
    tables: list = field(default_factory=list)
    watch: sqlite3.Connection | None = None
    memo: dict = field(default_factory=dict)

    @property
    def database(self) -> Database:
        return self.site.database

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"World({self.database.url})"


def _memo(world: World, key, make):
    if key not in world.memo:
        world.memo[key] = make()
    return world.memo[key]


def build_world(database_url: str, folder: Path) -> World:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = load_settings(
        database_url=database_url,
        data_dir=folder,
        feeds_file=ROOT / "feeds.yaml",
        public_base_url=PUBLIC_URL,
        sendgrid_webhook_public_key=base64.b64encode(der).decode(),
        twilio_auth_token=TWILIO_TOKEN,
        allow_private_addresses=True,
    )
    database = Database(database_url)
    site = Site(settings, database)
    now = datetime.now(UTC)
    _user(database, ADMIN, "admin")
    _user(database, OTHER, "editor")
    used = _advisory(database, 1, "FortiOS flaw")
    queued = _advisory(database, 2, "Exchange flaw")
    staff = _login(site, ADMIN)
    staff_token = CSRF.search(staff.get("/staff/queue").text).group(1)
    made = staff.post("/staff/queue/alert", data={"csrf_token": staff_token, "advisory": str(used)})
    assert made.status_code == 303, made.text
    alert = int(made.headers["location"].split("/")[3])
    preferences = site.subscribe_and_confirm().rsplit("/", 1)[1]
    with database.session() as session:
        firm = directory.add(session, parse_firm(FIRM), None, now)
        correction = store_correction(session, firm, "Our phone number changed.", now)
        firm_token = firm_link(PUBLIC_URL, site.service.signer, firm).rsplit("/", 1)[1]
        feeds = frozenset(sync_feeds(session, load_registry(settings.feeds_file)))
        subscriber = session.scalars(select(Subscriber)).one()
        links = site.service.links
        data = links.data(subscriber.id, subscriber.link_key).rsplit("/", 1)[1]
        unsubscribe = links.unsubscribe(subscriber.id).rsplit("/", 1)[1]
        ids = (firm.id, correction.id, subscriber.sms_optout_code)
        staff_ids = dict(session.execute(select(StaffUser.email, StaffUser.id)).all())
    public = site.browser()
    login = site.browser(ip="198.51.100.77")
    world = World(
        site=site,
        staff=staff,
        staff_token=staff_token,
        public=public,
        public_token=CSRF.search(public.get("/subscribe").text).group(1),
        login=login,
        login_token=CSRF.search(login.get("/staff/login").text).group(1),
        foreign_token=CSRF.search(site.browser().get("/subscribe").text).group(1),
        webhook=TestClient(site.app, follow_redirects=False),
        private_key=key,
        preferences=preferences,
        data=data,
        unsubscribe=unsubscribe,
        optout=ids[2],
        sms_code=site.last_sms_code(),
        firm_token=firm_token,
        alert=alert,
        firm=ids[0],
        admin=staff_ids[ADMIN],
        other_user=staff_ids[OTHER],
        correction=ids[1],
        queued=queued,
        used=used,
        feeds=feeds,
    )
    metadata = MetaData()
    metadata.reflect(database.engine)
    world.tables = list(metadata.sorted_tables)
    if database.dialect == "sqlite":  # PRAGMA data_version: a cheap "did anything change?"
        world.watch = sqlite3.connect(database.engine.url.database, isolation_level=None)
    return world


FIRM = {
    "name": "Secure Firm",
    "enterprise_number": "0123.456.749",
    "website": "https://firm.example",
    "email": "help@firm.example",
    "phone": "+3225418111",
    "regions": "BE-VAN",
    "languages": "nl",
    "specialities": "incident-response",
}
NEW_FIRM = {
    "name": "Another Firm",
    "enterprise_number": "0203.456.708",
    "website": "https://another.example",
    "email": "info@another.example",
    "phone": "+3225418112",
    "regions": ["BE-VAN", "BE-BRU"],
    "languages": ["nl", "fr"],
    "specialities": ["incident-response"],
    "certifications": "ISO 27001",
    "status": "pending",
    "vetted_on": "",
    "expires_on": "",
    "notes": "",
}


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing():
    """argon2 at its lowest cost for this module: every fuzzed login and password change
    verifies a hash (half a second each at the real cost, on a small machine). Verifying
    uses the parameters stored in the hash, so the accounts are created with these too."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    dummy = cheap.hash("not anybody's password")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_HASHER", cheap)
        patch.setattr(passwords, "dummy_hash", lambda: dummy)
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    world = build_world(f"sqlite:///{folder / 'fuzz.sqlite3'}", folder)
    yield world
    world.watch.close()
    world.database.dispose()


# --------------------------------------------------------------------------- "nothing stored"

# Touched by every logged-in request, at most once a minute (alerts/staff/sessions.py).
IGNORED_COLUMNS = {"staff_sessions": {"last_seen_at"}}


def snapshot(world: World, ignored: dict[str, set[str]]) -> dict[str, Counter]:
    """Every row of every table (as JSON text), and the outbox files. Reading every table
    is the slow part, so it is read again only once SQLite's data_version says another
    connection committed a change since the last reading."""
    version = world.watch.execute("PRAGMA data_version").fetchone()[0]
    key = (version, json.dumps({t: sorted(c) for t, c in ignored.items()}, sort_keys=True))
    cached = world.memo.get("snapshot")
    if cached is None or cached[0] != key:
        cached = world.memo["snapshot"] = (key, _read_tables(world, ignored))
    outbox = world.site.settings.outbox_dir()
    files = Counter(str(p) for p in outbox.rglob("*") if p.is_file())
    return cached[1] | {"(outbox files)": files}


def _read_tables(world: World, ignored: dict[str, set[str]]) -> dict[str, Counter]:
    rows: dict[str, Counter] = {}
    with world.database.engine.connect() as connection:
        for table in world.tables:
            skip = IGNORED_COLUMNS.get(table.name, set()) | ignored.get(table.name, set())
            columns = [column for column in table.columns if column.name not in skip]
            names = [column.name for column in columns]
            found = connection.execute(select(*columns)).all()
            rows[table.name] = Counter(
                json.dumps(dict(zip(names, row, strict=True)), default=str, sort_keys=True)
                for row in found
            )
    return rows


def changes(before, after, allowed) -> list[str]:
    """Rows that appeared or disappeared (a change is both), except the allowed ones."""
    found = []
    for table in after:
        for sign, rows in (
            ("+", after[table] - before[table]),
            ("-", before[table] - after[table]),
        ):
            for row in rows:
                if table == "(outbox files)" or not allowed(table, json.loads(row)):
                    found.append(f"{sign} {table}: {row[:300]}")
    return found


def nothing_allowed(_table: str, _row: dict) -> bool:
    return False


def failed_logins(table: str, row: dict) -> bool:
    """A refused login is counted (per account and per client) and audited: that is the
    throttle working (alerts/staff/accounts.py authenticate), not the form storing input."""
    if table == "rate_limit_hits":
        return True
    return table == "audit_events" and row.get("action") in ("login-failed", "login-held")


# --------------------------------------------------------------------------- the routes


@dataclass(frozen=True)
class Target:
    client: str  # "public", "staff", "login", "sendgrid", "twilio"
    # (path strategy, poison strategy) pairs; hypothesis picks one per example
    modes: Callable[[World], list[tuple[st.SearchStrategy[str], st.SearchStrategy[Poison]]]]
    base: Callable[[World], dict] = lambda w: {}
    csrf: int | None = None  # the answer to an otherwise valid form with a bad token
    valid: Callable[[World], tuple[str, dict]] | None = None  # that otherwise valid form
    allowed: Callable[[str, dict], bool] = nothing_allowed
    ignored: dict[str, set[str]] = field(default_factory=dict)
    fuzzed: bool = True  # False: the token is its only input (fuzzed with bad tokens only)
    keep: tuple[str, ...] = ()  # fields never mutated (see `mutated`)


def _just(path: str, poison=IDENTITY):
    return (st.just(path), poison)


def _signup_poison(w):
    return st.one_of(
        drop("consent"),
        set_field("consent", TEXT.filter(lambda v: not as_bool(v))),
        set_field("email", TEXT.filter(lambda v: "@" not in v)),
        set_field("region", not_in(options.codes("regions"))),
        set_field("notice_version", not_in({NOTICE_VERSION})),
    )


def _profile_poison(w):
    return st.one_of(
        set_field("email", TEXT.filter(lambda v: "@" not in v)),
        set_field("region", not_in(options.codes("regions"))),
        set_field("language", not_in({"nl", "fr", "de", "en"}, VALUE)),
        set_field("size_band", not_in(options.codes("size_bands"), VALUE)),
    )


def _preference_actions(w):
    valid = ("sms-code", "sms-resend", "pause", "resume", "leave", "data-link")
    prefix = f"/preferences/{w.preferences}"
    wrong_code = TEXT.filter(lambda code: w.sms_code not in code[:12])
    wrong_channel = VALUE.filter(lambda c: (c or "all") not in ("all", "email", "sms"))
    return [
        (
            st.tuples(junk_tokens(w.preferences, sealed=True), st.sampled_from(valid)).map(
                lambda t: f"/preferences/{t[0]}/{t[1]}"
            ),
            IDENTITY,
        ),
        (segment(not_in(valid)).map(lambda action: f"{prefix}/{action}"), IDENTITY),
        _just(f"{prefix}/sms-code", set_field("code", wrong_code)),
        _just(f"{prefix}/leave", set_field("channel", wrong_channel)),
    ]


def _firm_poison(w):
    return st.one_of(
        set_field("website", TEXT.map(lambda t: "http://" + t)),
        set_field("regions", TEXT.map(lambda t: "XX-" + t)),  # the first item is unknown
        set_field("email", TEXT.filter(lambda v: "@" not in v)),
        set_field("status", TEXT.filter(lambda s: s.strip() and s.strip().lower() not in STATUSES)),
        set_field("name", WHITESPACE),
        set_field("specialities", TEXT.map(lambda t: "zz-" + t)),
    )


def _edit_poison(w):
    known = {family.id for family in w.site.app.state.catalogue.families}
    return st.one_of(
        set_field("tier", not_in(editing.TIERS)),
        set_field(
            "links", st.sampled_from(["javascript:alert(1)", "http://x.example", "x | ftp://y"])
        ),
        set_field("families", not_in(known, TEXT.filter(bool))),
        set_field("title_en", st.integers(201, 3000).map(lambda n: "T" * n)),
    )


def _firm_values(w) -> dict:
    return FIRM | {
        "regions": ["BE-VAN"],
        "languages": ["nl"],
        "specialities": ["incident-response"],
    }


def _alert_form(w) -> dict:
    page = w.staff.get(f"/staff/alerts/{w.alert}/edit").text
    from tests.test_curation import _edit_form

    return _edit_form(page)


def _refused_actions(w):
    """Actions that change nothing for a draft its own editor last touched."""
    refused = ("approve", "reject", "schedule", "unschedule", "send")
    others = not_in(set(lifecycle.ACTIONS) | {"preview"}, TEXT)
    return segment(st.one_of(st.sampled_from(refused), others))


def _future_date(value: str) -> bool:
    try:
        return date.fromisoformat(value[:10]) > date.today()
    except ValueError:
        return False


SCAN = load_scan()


def _scan_answers() -> dict:
    """Every scored question answered with its first answer (a valid scan)."""
    return {f"q-{q.id}": q.answers[0].id for q in SCAN.questions if q.kind == "single"}


def _scan_poison(w):
    """An answer that is not one of the question's, or no scored answer at all."""
    question = SCAN.questions[0]
    wrong = not_in({a.id for a in question.answers} | {""})
    scored = [f"q-{q.id}" for q in SCAN.questions if q.kind == "single"]
    return st.one_of(set_field(f"q-{question.id}", wrong), drop(*scored))


def _scan_result_actions(w):
    prefix = f"/preferences/{w.preferences}/scan/results"
    return [
        (
            junk_tokens(w.preferences, sealed=True).map(
                lambda t: f"/preferences/{t}/scan/results/1/consents"
            ),
            IDENTITY,
        ),
        (missing_ids().map(lambda i: f"{prefix}/{i}/forget"), IDENTITY),
        (segment(not_in({"consents", "forget"})).map(lambda a: f"{prefix}/1/{a}"), IDENTITY),
    ]


SUBSCRIBER_STALE = 400  # subscribers/web.py: a stale or forged form is shown again (400)
STAFF_STALE = 403  # alerts/staff/web.py: CsrfError -> "Please try again" (403)

TARGETS: dict[str, Target] = {
    # --- public pages (nobody logged in) ---
    "/subscribe": Target(
        "public",
        lambda w: [_just("/subscribe", _signup_poison(w))],
        base=lambda w: SIGNUP,
        keep=("notice_version",),  # a changed notice is refused before anything is read
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: ("/subscribe", SIGNUP | {"email": "someone@else.example"}),
    ),
    "/confirm/{token}": Target(
        "public",
        lambda w: [(junk_tokens().map(lambda t: f"/confirm/{t}"), IDENTITY)],
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: ("/confirm/whatever", {}),  # the form is checked before the link
    ),
    "/confirm-email/{token}": Target(
        "public",
        lambda w: [(junk_tokens().map(lambda t: f"/confirm-email/{t}"), IDENTITY)],
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: ("/confirm-email/whatever", {}),
    ),
    "/preferences/{token}": Target(
        "public",
        lambda w: [
            (junk_tokens(w.preferences, sealed=True).map(lambda t: f"/preferences/{t}"), IDENTITY),
            _just(f"/preferences/{w.preferences}", _profile_poison(w)),
        ],
        base=lambda w: {k: v for k, v in SIGNUP.items() if k != "consent"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/preferences/{w.preferences}", SIGNUP | {"region": "BE-BRU"}),
    ),
    "/preferences/{token}/{action}": Target(
        "public",
        _preference_actions,
        base=lambda w: {"code": "123456", "channel": "sms"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/preferences/{w.preferences}/pause", {}),
        # a wrong SMS code is counted (subscribers/sms_codes.py check): the attempt limit
        ignored={"subscribers": {"sms_code_attempts"}},
    ),
    "/scan": Target(
        "public",
        lambda w: [_just("/scan", _scan_poison(w))],
        base=lambda w: _scan_answers() | {"share_stats": "1", "region": "BE-VAN"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: ("/scan", _scan_answers() | {"share_stats": "1"}),
    ),
    "/scan/report.pdf": Target(
        "public",
        lambda w: [_just("/scan/report.pdf", _scan_poison(w))],
        base=lambda w: _scan_answers(),
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: ("/scan/report.pdf", _scan_answers()),
    ),
    "/preferences/{token}/scan": Target(
        "public",
        lambda w: [
            (
                junk_tokens(w.preferences, sealed=True).map(lambda t: f"/preferences/{t}/scan"),
                IDENTITY,
            ),
            _just(f"/preferences/{w.preferences}/scan", _scan_poison(w)),
        ],
        base=lambda w: _scan_answers() | {"keep": "1", "update_profile": "1", "share_stats": "1"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/preferences/{w.preferences}/scan", _scan_answers() | {"keep": "1"}),
    ),
    "/preferences/{token}/scan/report.pdf": Target(
        "public",
        lambda w: [
            (
                junk_tokens(w.preferences, sealed=True).map(
                    lambda t: f"/preferences/{t}/scan/report.pdf"
                ),
                IDENTITY,
            ),
            _just(f"/preferences/{w.preferences}/scan/report.pdf", _scan_poison(w)),
        ],
        base=lambda w: _scan_answers(),
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/preferences/{w.preferences}/scan/report.pdf", _scan_answers()),
    ),
    # No result exists in this world: every id names nothing, every action changes nothing.
    "/preferences/{token}/scan/results/{result_id}/{action}": Target(
        "public",
        _scan_result_actions,
        base=lambda w: {"share_stats": "1", "staff_may_view": "1"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/preferences/{w.preferences}/scan/results/1/consents", {}),
    ),
    "/my-data/{token}/erase": Target(
        "public",
        lambda w: [
            (junk_tokens(w.data).map(lambda t: f"/my-data/{t}/erase"), IDENTITY),
            _just(f"/my-data/{w.data}/erase", drop("confirm_erase")),
        ],
        base=lambda w: {"confirm_erase": "1"},
        csrf=SUBSCRIBER_STALE,
        valid=lambda w: (f"/my-data/{w.data}/erase", {"confirm_erase": "1"}),
    ),
    # RFC 8058 one-click and the SMS link: no form, no token; the signed link is all.
    "/unsubscribe/{token}": Target(
        "public",
        lambda w: [
            (junk_tokens(w.unsubscribe, sealed=True).map(lambda t: f"/unsubscribe/{t}"), IDENTITY)
        ],
    ),
    "/s/{code}": Target(
        "public",
        lambda w: [
            (
                segment(
                    st.one_of(TEXT, st.sampled_from(NASTY)).filter(
                        lambda c: c[:16] != w.optout and not c.startswith(w.optout)
                    )
                ).map(lambda c: f"/s/{c}"),
                IDENTITY,
            )
        ],
    ),
    "/firm/{token}/correction": Target(
        "public",
        lambda w: [
            (
                junk_tokens(w.firm_token, sealed=True).map(lambda t: f"/firm/{t}/correction"),
                IDENTITY,
            ),
            _just(
                f"/firm/{w.firm_token}/correction",
                set_field(
                    "text",
                    st.one_of(
                        TEXT.filter(lambda t: len(t.strip()) < 10),
                        st.integers(2001, 5000).map(lambda n: "y" * n),
                        st.sampled_from(["é", "\x00", "😀", " x"]).map(lambda c: c * 4000),
                    ),
                ),
            ),
        ],
        base=lambda w: {"text": "Our phone number changed last month."},
        csrf=403,  # alerts/referrals/web.py: a stale form gets the "link gone" page, 403
        valid=lambda w: (f"/firm/{w.firm_token}/correction", {"text": "Please fix our phone."}),
    ),
    # --- provider webhooks (signed, no session, no CSRF) ---
    "/webhooks/sendgrid": Target("sendgrid", lambda w: []),
    "/webhooks/twilio": Target("twilio", lambda w: []),
    "/webhooks/sms": Target("twilio", lambda w: []),
    # --- staff pages (an administrator, logged in, with a valid token) ---
    "/staff/login": Target(
        "login",
        lambda w: [
            _just("/staff/login", set_field("password", VALUE.filter(lambda p: GOOD not in p)))
        ],
        base=lambda w: {"email": ADMIN, "password": "not the password", "next": "/staff/users"},
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/login", {"email": ADMIN, "password": GOOD}),
        allowed=failed_logins,
    ),
    "/staff/logout": Target(
        "staff",
        lambda w: [],
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/logout", {}),
        fuzzed=False,  # nothing but the token: any valid post logs out, as it should
    ),
    "/staff/password": Target(
        "staff",
        lambda w: [
            _just("/staff/password", set_field("current", VALUE.filter(lambda p: GOOD not in p)))
        ],
        base=lambda w: {"current": "wrong", "new": "another long phrase"},
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/password", {"current": GOOD, "new": "another long phrase"}),
    ),
    "/staff/users": Target(
        "staff",
        lambda w: [
            _just(
                "/staff/users",
                st.one_of(
                    set_field("role", not_in(ROLES, VALUE).filter(lambda r: r[:10] not in ROLES)),
                    set_field("email", TEXT.filter(lambda v: "@" not in v)),
                    set_field("name", WHITESPACE),
                ),
            )
        ],
        base=lambda w: {"email": "new@gov.example", "name": "New", "role": "editor"},
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/users", {"email": "n@gov.example", "name": "N", "role": "editor"}),
    ),
    "/staff/users/{user_id}/{action}": Target(
        "staff",
        lambda w: [
            (
                segment(not_in({"disable", "enable", "reset"})).map(
                    lambda a: f"/staff/users/{w.other_user}/{a}"
                ),
                IDENTITY,
            ),
            (
                st.tuples(
                    missing_ids(w.admin, w.other_user), st.sampled_from(["disable", "reset"])
                ).map(lambda t: f"/staff/users/{t[0]}/{t[1]}"),
                IDENTITY,
            ),
            _just(f"/staff/users/{w.admin}/disable"),  # one's own account: refused
        ],
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/users/{w.other_user}/disable", {}),
    ),
    "/staff/queue/dismiss": Target(
        "staff",
        lambda w: [
            _just("/staff/queue/dismiss", set_field("reason", WHITESPACE)),
            _just(
                "/staff/queue/dismiss",
                set_field("advisory", _ids_naming_nothing({w.queued, w.used})),
            ),
        ],
        base=lambda w: {"advisory": str(w.queued), "reason": "duplicate", "tier": "urgent"},
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/queue/dismiss", {"advisory": w.queued, "reason": "duplicate"}),
    ),
    "/staff/queue/alert": Target(
        "staff",
        lambda w: [
            _just("/staff/queue/alert", set_field("advisory", _ids_naming_nothing({w.queued}))),
        ],
        base=lambda w: {"advisory": str(w.queued)},
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/queue/alert", {"advisory": w.queued}),
    ),
    "/staff/alerts/{alert_id}/edit": Target(
        "staff",
        lambda w: [
            _just(f"/staff/alerts/{w.alert}/edit", _edit_poison(w)),
            (missing_ids(w.alert).map(lambda i: f"/staff/alerts/{i}/edit"), IDENTITY),
        ],
        base=_alert_form,
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/alerts/{w.alert}/edit", _alert_form(w) | {"title_en": "New"}),
    ),
    "/staff/alerts/{alert_id}/{action}": Target(
        "staff",
        lambda w: [
            (_refused_actions(w).map(lambda a: f"/staff/alerts/{w.alert}/{a}"), IDENTITY),
            (
                st.tuples(missing_ids(w.alert), st.sampled_from(["submit", "cancel"])).map(
                    lambda t: f"/staff/alerts/{t[0]}/{t[1]}"
                ),
                IDENTITY,
            ),
        ],
        base=lambda w: {"reason": "not now", "when": "2026-12-01T10:00"},
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/alerts/{w.alert}/cancel", {}),
    ),
    "/staff/feeds/{name}/enable": Target(
        "staff",
        lambda w: [
            (
                segment(TEXT.filter(lambda n: n[:100] not in w.feeds)).map(
                    lambda n: f"/staff/feeds/{n}/enable"
                ),
                IDENTITY,
            )
        ],
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/feeds/{min(w.feeds)}/enable", {}),
    ),
    "/staff/corrections/{correction_id}/{action}": Target(
        "staff",
        lambda w: [
            (
                segment(not_in({"done", "refuse"})).map(
                    lambda a: f"/staff/corrections/{w.correction}/{a}"
                ),
                IDENTITY,
            ),
            (
                st.tuples(missing_ids(w.correction), st.sampled_from(["done", "refuse"])).map(
                    lambda t: f"/staff/corrections/{t[0]}/{t[1]}"
                ),
                IDENTITY,
            ),
        ],
        base=lambda w: {"note": "checked"},
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/corrections/{w.correction}/done", {"note": "ok"}),
    ),
    "/staff/firms/new": Target(
        "staff",
        lambda w: [_just("/staff/firms/new", _firm_poison(w))],
        base=lambda w: NEW_FIRM,
        csrf=STAFF_STALE,
        valid=lambda w: ("/staff/firms/new", NEW_FIRM),
    ),
    "/staff/firms/{firm_id}/edit": Target(
        "staff",
        lambda w: [
            _just(f"/staff/firms/{w.firm}/edit", _firm_poison(w)),
            (missing_ids(w.firm).map(lambda i: f"/staff/firms/{i}/edit"), IDENTITY),
        ],
        base=_firm_values,
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/firms/{w.firm}/edit", _firm_values(w) | {"name": "Renamed"}),
    ),
    "/staff/firms/{firm_id}/vet": Target(
        "staff",
        lambda w: [
            _just(
                f"/staff/firms/{w.firm}/vet",
                set_field(
                    "expires_on",
                    st.one_of(VALUE, st.dates().map(date.isoformat)).filter(
                        lambda v: not _future_date(v)
                    ),
                ),
            ),
            (missing_ids(w.firm).map(lambda i: f"/staff/firms/{i}/vet"), IDENTITY),
        ],
        base=lambda w: {"expires_on": "2099-01-01"},
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/firms/{w.firm}/vet", {"expires_on": "2099-01-01"}),
    ),
    "/staff/firms/{firm_id}/suspend": Target(
        "staff",
        lambda w: [
            _just(f"/staff/firms/{w.firm}/suspend", set_field("reason", WHITESPACE)),
            (missing_ids(w.firm).map(lambda i: f"/staff/firms/{i}/suspend"), IDENTITY),
        ],
        base=lambda w: {"reason": "complaints"},
        csrf=STAFF_STALE,
        valid=lambda w: (f"/staff/firms/{w.firm}/suspend", {"reason": "complaints"}),
    ),
}

WEBHOOKS = ("sendgrid", "twilio")
FORM_TARGETS = [path for path, t in TARGETS.items() if t.fuzzed and t.client not in WEBHOOKS]
CSRF_TARGETS = [path for path, t in TARGETS.items() if t.csrf is not None]


def post_routes(world: World) -> set[str]:
    return {path for path, methods in _flatten(world.site.app.routes) if "POST" in methods}


def test_every_post_route_is_classified(world):
    """A new form or endpoint fails here until it has a fuzz target (or a reason not to)."""
    assert post_routes(world) == set(TARGETS)


def test_the_snapshot_sees_a_stored_row_and_its_removal(world):
    """The check itself: a row written through the app's own engine (another connection
    than the data_version watch) is seen, and so is its deletion."""
    from sqlalchemy import delete

    from alerts.staff import audit
    from alerts.staff.models import AuditEvent

    before = snapshot(world, {})
    with world.database.session() as session:
        audit.record(session, datetime.now(UTC), None, "fuzz-self-check", "nothing")
    found = changes(before, snapshot(world, {}), nothing_allowed)
    assert len(found) == 1 and "fuzz-self-check" in found[0]
    assert changes(before, snapshot(world, {}), failed_logins) == found  # not a login row
    with world.database.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.action == "fuzz-self-check"))
    assert changes(before, snapshot(world, {}), nothing_allowed) == []


# --------------------------------------------------------------------------- sending


def _client(world: World, kind: str) -> tuple[TestClient, str]:
    return {
        "public": (world.public, world.public_token),
        "staff": (world.staff, world.staff_token),
        "login": (world.login, world.login_token),
    }[kind]


@st.composite
def request_body(draw, pairs: list[tuple[str, str]], token: str | None) -> dict:
    """httpx keyword arguments for one POST in one of the shapes a client could send."""
    signed = pairs + ([("csrf_token", token)] if token else [])
    shape = draw(st.sampled_from(SHAPES))
    if shape == "huge":
        char = draw(st.sampled_from(["x", "\x00", "é", "\U0001f600", "%"]))
        name = draw(st.sampled_from([name for name, _ in pairs] or ["text"]))
        big = char * (HUGE_BYTES // len(quote(char)))
        return {"content": urlencode(signed + [(name, big)]).encode(), "headers": FORM}
    if shape == "many":
        count = draw(st.integers(401, 2000))
        extra = [(f"f{n}", "x") for n in range(count)]
        return {"content": urlencode(signed + extra).encode(), "headers": FORM}
    if shape == "multipart":
        fields: dict[str, list[str]] = {}
        for name, value in signed:
            fields.setdefault(name, []).append(value)
        name = draw(st.sampled_from([name for name, _ in pairs] or ["file"]))
        upload = draw(st.binary(max_size=200))
        return {"data": fields, "files": {name: ("evil.exe", upload, "application/octet-stream")}}
    if shape == "bad-multipart":
        boundary = draw(st.sampled_from(["", "x", "-" * 200, "a b"]))
        raw = draw(st.binary(max_size=300))
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        return {"content": raw, "headers": headers}
    if shape == "json":
        payload = draw(st.sampled_from(["object", "list", "broken"]))
        if payload == "broken":
            return {
                "content": b'{"csrf_token": "' + token.encode() if token else b"{",
                "headers": {},
            }
        body = dict(signed) if payload == "object" else signed
        return {
            "content": json.dumps(body).encode(),
            "headers": {"content-type": "application/json"},
        }
    if shape == "raw":
        raw = draw(st.binary(max_size=300))
        return {"content": urlencode(signed).encode() + b"&" + raw, "headers": FORM}
    if shape == "text":
        return {"content": urlencode(signed).encode(), "headers": {"content-type": "text/plain"}}
    return {"content": urlencode(signed).encode(), "headers": FORM}


def check(response, what: str) -> None:
    status = response.status_code
    assert status < 500, f"{what}: {status} {response.text[:500]}"
    assert 200 <= status < 500, f"{what}: {status}"
    if 300 <= status < 400:
        location = response.headers["location"]
        # Starlette's trailing-slash redirect names our own host in full; anything else
        # must be a path on this site (never another site: no open redirect).
        location = location.removeprefix("http://testserver")
        assert location.startswith("/") and not location.startswith("//"), (what, location)


def expect_unchanged(world: World, target: Target, before, what: str) -> None:
    after = snapshot(world, target.ignored)
    changed = changes(before, after, target.allowed)
    assert not changed, f"{what} stored something:\n" + "\n".join(changed[:10])


# --------------------------------------------------------------------------- the fuzzing


@pytest.mark.parametrize("route", FORM_TARGETS)
@FUZZ
@given(data=st.data())
def test_invalid_forms_answer_4xx_and_store_nothing(world, route, data):
    target = TARGETS[route]
    client, token = _client(world, target.client)
    modes = _memo(world, ("modes", route), lambda: target.modes(world))
    path, poison = data.draw(st.sampled_from(modes).flatmap(lambda m: st.tuples(*m)), "mode")
    base = _memo(world, ("base", route), lambda: target.base(world))
    pairs = poison(data.draw(mutated(base, target.keep), "form"))
    body = data.draw(request_body(pairs, token), "body")
    before = snapshot(world, target.ignored)
    response = client.post(path, **body)
    check(response, f"POST {path}")
    expect_unchanged(world, target, before, f"POST {path}")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=15,
)
SENDGRID_KEYS = ("email", "event", "type", "reason", "sg_event_id", "sg_message_id")
SENDGRID_KEYS += ("timestamp", "outbox_id", "reference", "response", "asm_group_id", "url")
SENDGRID_EVENTS = ("bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe")
SENDGRID_EVENTS += ("processed", "deferred", "delivered", "open", "click", "something-new")
EVENTS = st.lists(
    st.one_of(
        st.dictionaries(
            st.one_of(st.sampled_from(SENDGRID_KEYS), TEXT),
            st.one_of(JSON_VALUES, st.sampled_from(SENDGRID_EVENTS), st.sampled_from(NASTY)),
            max_size=8,
        ),
        JSON_VALUES,
    ),
    max_size=6,
)


def _sendgrid_headers(world: World, body: bytes, stamp: int | None = None) -> dict[str, str]:
    stamp = int(world.site.clock().timestamp()) if stamp is None else stamp
    signature = world.private_key.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(stamp),
        "content-type": "application/json",
    }


@st.composite
def sendgrid_post(draw, world: World) -> tuple[bytes, dict[str, str]]:
    kind = draw(
        st.sampled_from(["events", "events", "value", "bytes", "unsigned", "stale", "huge", "junk"])
    )
    if kind == "events":
        events = draw(EVENTS)
        # A well-formed suppression would rightly be stored: only junk here.
        events = [e for e in events if not sendgrid_suppressions([e])]
        body = json.dumps(events).encode()
    elif kind == "value":
        body = json.dumps(draw(JSON_VALUES.filter(lambda v: not isinstance(v, list)))).encode()
    elif kind == "huge":
        body = json.dumps([{"event": "open", "pad": "x" * HUGE_BYTES}]).encode()
    else:
        body = draw(st.one_of(st.binary(max_size=400), TEXT.map(str.encode)))
    if kind == "unsigned":
        headers = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "X-Twilio-Email-Event-Webhook-Signature": TEXT.filter(str.isascii),
                    "X-Twilio-Email-Event-Webhook-Timestamp": TEXT.filter(str.isascii),
                },
            )
        )
    elif kind == "stale":
        headers = _sendgrid_headers(
            world, body, int(world.site.clock().timestamp()) - draw(st.integers(601, 10**9))
        )
    else:
        headers = _sendgrid_headers(world, body)
    return body, headers


@pytest.mark.parametrize("route", ["/webhooks/sendgrid"])
@FUZZ
@given(data=st.data())
def test_sendgrid_webhook_survives_junk_and_stores_nothing(world, route, data):
    body, headers = data.draw(sendgrid_post(world), "post")
    before = snapshot(world, {})
    response = world.webhook.post(route, content=body, headers=headers)
    check(response, f"POST {route}")
    expect_unchanged(world, TARGETS[route], before, f"POST {route}")


TWILIO_KEYS = ("MessageSid", "SmsSid", "MessageStatus", "ErrorCode", "From", "To", "Body")
TWILIO_KEYS += ("OptOutType", "AccountSid", "NumMedia")


@st.composite
def twilio_post(draw, route: str) -> tuple[str, bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["form"] * 4 + ["unsigned", "many", "bytes", "huge"]))
    pairs = draw(
        st.lists(st.tuples(st.one_of(st.sampled_from(TWILIO_KEYS), TEXT), VALUE), max_size=10)
    )
    query = draw(st.one_of(st.just(""), st.dictionaries(TEXT, TEXT, max_size=2).map(urlencode)))
    path = route + (f"?{query}" if query else "")
    if kind == "many":
        pairs += [(f"f{n}", "x") for n in range(draw(st.integers(201, 1500)))]
    body = urlencode(pairs).encode()
    if kind == "bytes":
        body = draw(st.binary(min_size=1, max_size=300))
    elif kind == "huge":
        body = urlencode(pairs + [("Body", "x" * HUGE_BYTES)]).encode()
    form: dict[str, str] = {}
    try:
        params = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        params = []
    for name, value in params:
        form.setdefault(name, value)
    if twilio_suppressions(form):  # a genuine STOP or a dead number would rightly be stored
        body, params = b"", []
    signature = twilio_signature(TWILIO_TOKEN, PUBLIC_URL + path, params)
    if kind == "unsigned":
        signature = draw(st.one_of(st.just(""), TEXT.filter(str.isascii)))
    return path, body, {"X-Twilio-Signature": signature, **FORM}


@pytest.mark.parametrize("route", ["/webhooks/twilio", "/webhooks/sms"])
@FUZZ
@given(data=st.data())
def test_twilio_webhook_survives_junk_and_stores_nothing(world, route, data):
    path, body, headers = data.draw(twilio_post(route), "post")
    before = snapshot(world, {})
    response = world.webhook.post(path, content=body, headers=headers)
    check(response, f"POST {path}")
    expect_unchanged(world, TARGETS[route], before, f"POST {path}")


# --------------------------------------------------------------------------- bad CSRF tokens

BAD_TOKENS = ("missing", "forged", "foreign", "tampered", "no-cookie")


@pytest.mark.parametrize("route", CSRF_TARGETS)
@CSRF_FUZZ
@given(data=st.data())
def test_a_bad_csrf_token_is_refused(world, route, data):
    """Everything right but the token: refused, nothing stored, the staff session intact."""
    target = TARGETS[route]
    client, token = _client(world, target.client)
    path, form = target.valid(world)
    how = data.draw(st.sampled_from(BAD_TOKENS), "token")
    pairs = [(k, str(v)) for k, values in form.items() for v in _listed(values)]
    if how == "forged":
        pairs.append(("csrf_token", data.draw(st.one_of(TEXT, st.sampled_from(NASTY)))))
    elif how == "foreign":
        pairs.append(("csrf_token", world.foreign_token))
    elif how == "tampered":
        pairs.append(("csrf_token", data.draw(junk_tokens(token).map(unquote))))
    elif how == "no-cookie":
        pairs.append(("csrf_token", token))
        staff_cookie = client.cookies.get("staff_session")
        client = TestClient(world.site.app, follow_redirects=False)
        if staff_cookie:
            client.cookies.set("staff_session", staff_cookie, path="/staff")
    before = snapshot(world, target.ignored)
    response = client.post(path, content=urlencode(pairs).encode(), headers=FORM)
    # A token with a NUL character is refused at the door (400) before the CSRF check.
    refusals = {target.csrf} | ({400} if any("\x00" in v for _, v in pairs) else set())
    assert response.status_code in refusals, (how, path, response.status_code)
    expect_unchanged(world, target, before, f"POST {path} ({how} token)")
    if target.client == "staff":
        assert world.staff.get("/staff").status_code == 200  # still logged in


def _listed(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


# --------------------------------------------------------------------------- known bugs


def _quiet(world: World, client: TestClient) -> TestClient:
    """The same browser, answering 500 instead of raising the server's exception."""
    quiet = TestClient(world.site.app, follow_redirects=False, raise_server_exceptions=False)
    quiet.cookies = client.cookies
    return quiet


@pytest.mark.parametrize("route", ["/staff/queue/dismiss", "/staff/queue/alert"])
@pytest.mark.parametrize("value", ["²", "9" * 5000, str(2**63)], ids=["superscript", "long", "big"])
def test_queue_forms_read_ids_safely(world, route, value):
    client = _quiet(world, world.staff)
    data = {"csrf_token": world.staff_token, "advisory": value, "reason": "duplicate"}
    before = snapshot(world, {})
    response = client.post(route, data=data)
    assert response.status_code < 500, response.status_code
    expect_unchanged(world, TARGETS[route], before, route)


SEALED_ROUTES = [
    ("GET", "/preferences/{token}"),
    ("POST", "/preferences/{token}"),
    ("POST", "/preferences/{token}/pause"),
    ("GET", "/preferences/{token}/scan"),
    ("POST", "/preferences/{token}/scan"),
    ("GET", "/preferences/{token}/scan/results"),
    ("POST", "/unsubscribe/{token}"),
    ("GET", "/firm/{token}"),
    ("POST", "/firm/{token}/correction"),
    ("GET", "/r/{token}"),
]


@pytest.mark.parametrize(("method", "template"), SEALED_ROUTES)
def test_sealed_links_with_non_ascii_characters_are_404(world, method, template):
    client = _quiet(world, world.public)
    path = template.format(token=quote("1.é", safe=""))
    data = {"csrf_token": world.public_token, "text": "A correction of some length."}
    response = client.get(path) if method == "GET" else client.post(path, data=data)
    assert response.status_code == 404, response.status_code


def _int_routes(world: World):
    for path, route in walk_routes(world.site.app.routes):
        dependant = getattr(route, "dependant", None)
        params = dependant.path_params if dependant else []
        ints = [param.name for param in params if param.field_info.annotation is int]
        if ints:
            for method in sorted(getattr(route, "methods", ()) or ()):
                if method in ("GET", "POST"):
                    yield method, path, ints


PATH_VALUES = {"language": "en", "kind": "html", "name": "x", "token": "x"}
ACTION_FOR = {"users": "disable", "alerts": "submit", "corrections": "done"}


def test_integer_path_parameters_beyond_64_bits_are_4xx(world):
    staff, public = _quiet(world, world.staff), _quiet(world, world.public)
    failures, tried = [], 0
    for method, template, ints in _int_routes(world):
        values = PATH_VALUES | {"action": ACTION_FOR.get(template.split("/")[2], "x")}
        values |= dict.fromkeys(ints, str(2**63))
        path = template.format(**values)
        client = staff if path.startswith("/staff") else public
        data = {"csrf_token": world.staff_token, "reason": "x", "expires_on": "2099-01-01"}
        response = client.get(path) if method == "GET" else client.post(path, data=data)
        tried += 1
        if response.status_code >= 500:
            failures.append(f"{method} {template}")
    assert tried >= 10  # the table is read from the app: it must find the id routes
    assert not failures, failures


# --------------------------------------------------------------------------- NUL characters


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def any_world(request, tmp_path_factory):
    """A world of its own (these posts may store what they send) on SQLite, or on a
    throwaway PostgreSQL database."""
    from tests.conftest import _create_postgres_database, _drop_postgres_database

    folder = tmp_path_factory.mktemp(f"nul-{request.param}")
    if request.param == "sqlite":
        url, name = f"sqlite:///{folder / 'nul.sqlite3'}", None
    else:
        url, name = _create_postgres_database()
    world = build_world(url, folder)
    try:
        yield world
    finally:
        world.database.dispose()
        if name:
            _drop_postgres_database(name)


def _sendgrid_nul(w):
    body = json.dumps([{"event": "delivered", "sg_message_id": "msg\x00", "email": "a@b.be"}])
    return body.encode(), _sendgrid_headers(w, body.encode())


def _twilio_nul(w):
    pairs = [("MessageSid", "SM\x00"), ("MessageStatus", "delivered"), ("To", "+32470123456")]
    signature = twilio_signature(TWILIO_TOKEN, PUBLIC_URL + "/webhooks/twilio", pairs)
    return urlencode(pairs).encode(), {"X-Twilio-Signature": signature, **FORM}


# (client, method, path, form) with NUL characters in a field that reaches the database.
NUL_CASES = {
    "login-email": ("login", "POST", lambda w: "/staff/login", {"email": "a\x00@gov.example"}),
    "login-password": ("login", "POST", lambda w: "/staff/login", {"password": "\x00" * 12}),
    "sms-optout": ("public", "POST", lambda w: "/s/a%00b", {}),
    "sms-optout-page": ("public", "GET", lambda w: "/s/a%00b", {}),
    "unsubscribe": ("public", "POST", lambda w: "/unsubscribe/a%00b", {}),
    "signup": ("public", "POST", lambda w: "/subscribe", SIGNUP | {"organisation": "Bak\x00"}),
    "sms-code": (
        "public",
        "POST",
        lambda w: f"/preferences/{w.preferences}/sms-code",
        {"code": "\x00"},
    ),
    "firm-correction": (
        "public",
        "POST",
        lambda w: f"/firm/{w.firm_token}/correction",
        {"text": "Our phone \x00 changed."},
    ),
    "feed-enable": ("staff", "POST", lambda w: "/staff/feeds/a%00/enable", {}),
    "user-name": (
        "staff",
        "POST",
        lambda w: "/staff/users",
        {"email": "nul@gov.example", "name": "N\x00", "role": "editor"},
    ),
    "dismiss-reason": (
        "staff",
        "POST",
        lambda w: "/staff/queue/dismiss",
        lambda w: {"advisory": str(w.queued), "reason": "dup\x00"},
    ),
    "firm-name": ("staff", "POST", lambda w: "/staff/firms/new", NEW_FIRM | {"name": "F\x00"}),
    "firm-suspend": (
        "staff",
        "POST",
        lambda w: f"/staff/firms/{w.firm}/suspend",
        {"reason": "\x00x"},
    ),
    "correction-note": (
        "staff",
        "POST",
        lambda w: f"/staff/corrections/{w.correction}/refuse",
        {"note": "n\x00"},
    ),
    "alert-title": (
        "staff",
        "POST",
        lambda w: f"/staff/alerts/{w.alert}/edit",
        {"tier": "urgent", "title_en": "T\x00"},
    ),
    "sendgrid-message-id": ("sendgrid", "POST", lambda w: "/webhooks/sendgrid", _sendgrid_nul),
    "twilio-message-sid": ("twilio", "POST", lambda w: "/webhooks/twilio", _twilio_nul),
    "api-search": ("public", "GET", lambda w: "/api/advisories?q=%00", {}),
    "advisories-source": ("public", "GET", lambda w: "/advisories?source=%00", {}),
    "archive-search": ("public", "GET", lambda w: "/alerts?q=%00", {}),
    "queue-search": ("staff", "GET", lambda w: "/staff/queue?q=%00&source=%00", {}),
}


@pytest.mark.parametrize("case", list(NUL_CASES))
def test_nul_characters_never_cause_a_server_error(any_world, case, request):
    world = any_world
    kind, method, path, form = NUL_CASES[case]
    path = path(world)
    if kind in WEBHOOKS:
        body, headers = form(world)
        response = _quiet(world, world.webhook).post(path, content=body, headers=headers)
    else:
        client, token = _client(world, kind)
        client = _quiet(world, client)
        if method == "GET":
            response = client.get(path)
        else:
            form = form(world) if callable(form) else form
            pairs = [(k, str(v)) for k, values in form.items() for v in _listed(values)]
            response = client.post(path, data=dict_list(pairs + [("csrf_token", token)]))
    assert response.status_code < 500, (case, response.status_code, response.text[:300])


def dict_list(pairs):
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out
