"""Issue 10: XSS payloads from feeds and from staff input, rendered in every page and
email, never execute in a real browser (Debian's chromium driven by Playwright).

Every page is checked twice:

* as served, in a browser context that enforces the site's content security policy. The
  DOM is scanned for anything our data could have turned into markup (script, frames,
  event-handler attributes, javascript:/data: links, injected style, a `data-xss`
  attribute every payload element carries) and the console is watched for CSP
  violations: CSP refusing something means markup got through and only the policy saved
  us, which fails the test as well (defence in depth);
* replayed byte for byte in a context with CSP switched off (`bypass_csp`), where an
  injected script would really run: every payload calls `__xss(n)` (a binding back to the
  test), `alert(n)` or sets the title to "XSS-n", so execution shows as a call, a dialog,
  a script error or the title; the same DOM scan runs again, and a request for one of the
  payloads' `xss-n` addresses (images, CSS url()) gives injected markup away too.

Pages that should show payloads as text are also checked to do so: a page the payloads
never reached would prove nothing.

Emails have no CSP at all: the HTML of every message the real delivery path wrote to the
file outbox, and of the newsletter, is rendered the second way only, at a made-up address
(rather than with set_content) so that requests for `xss-n` show. (The staff previews of
the same HTML are app pages and are checked both ways.) A control test first shows
the detector catches each payload when a careless page pastes it in, so a green run means
the app escaped or removed the payloads, not that the harness looked away.

SQLite only: rendering and escaping happen in Jinja2 and the browser, the same on both
databases (the database tests cover PostgreSQL)."""

from __future__ import annotations

import email
import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import jinja2
import pytest

from alerts.compose import PLACEHOLDERS, Firm, compose_newsletter
from alerts.curation import editing
from alerts.curation.content import alert_content
from alerts.curation.models import Alert
from alerts.delivery.dispatch import Dispatcher
from alerts.ingest.outcome import PollSummary, record_run, store_result
from alerts.ingest.parsers import parse
from alerts.ingest.records import AdvisoryRecord, ParseResult
from alerts.models import Feed
from alerts.staff import accounts
from alerts.templating import LANGUAGES
from alerts.web.headers import POLICY
from tests.browser import chromium, serve
from tests.conftest import ROOT
from tests.delivery_setup import add_subscribers
from tests.subscriber_site import Site
from tests.test_curation import GOOD, KNOWN, NOW, _advisory

SETTLE_MS = 60  # after load: onerror/onload/onfocus handlers and bindings come in
SHOTS = ROOT / "test-artifacts" / "screenshots"


# --- the payloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    number: int
    text: str
    careless: str  # how a careless page would let it through (see _careless)
    runs: bool  # executes on load once let through (proved by the control test)


PAYLOADS = [
    Payload(1, "<script data-xss>__xss(1)</script>", "raw", True),
    Payload(2, "<img data-xss src=xss-2 onerror=__xss(2)>", "raw", True),
    Payload(3, "<svg data-xss onload=__xss(3)>", "raw", True),
    Payload(4, '"><script data-xss>__xss(4)</script>', "raw", True),
    Payload(5, '" data-xss autofocus onfocus="__xss(5)" x="', "raw", True),
    Payload(6, "' data-xss autofocus onfocus='__xss(6)' x='", "raw", True),
    Payload(7, "</title></textarea></style><script data-xss>alert(7)</script>", "raw", True),
    Payload(8, '<iframe data-xss srcdoc="<script>parent.__xss(8)</script>"></iframe>', "raw", True),
    Payload(9, "<a data-xss href=javascript:__xss(9)>more</a>", "raw", False),
    Payload(
        10,
        "<style data-xss>body{background:url(xss-10)}</style>"
        '<b data-xss style="background:url(xss-10);width:expression(__xss(10))">css</b>',
        "raw",
        False,
    ),
    Payload(
        11,
        '<object data-xss data="data:text/html,<script>alert(11)</script>"></object>',
        "raw",
        True,
    ),
    Payload(12, "&lt;img data-xss src=xss-12 onerror=__xss(12)&gt;", "unescaped", True),
    Payload(
        13,
        "&amp;lt;script data-xss&amp;gt;document.title='XSS-13'&amp;lt;/script&amp;gt;",
        "unescaped",
        True,
    ),
    Payload(14, "\\u003cimg data-xss src=xss-14 onerror=__xss(14)\\u003e", "json", True),
    Payload(15, "<scr<script>ipt data-xss>__xss(15)</scr</script>ipt>", "filtered", True),
    Payload(
        16,
        '<noscript><p title="</noscript><img data-xss src=xss-16 onerror=__xss(16)>">',
        "raw",
        True,
    ),
    Payload(17, "{{'x'~'ssTPL'}}{{7*'7'}}{% if 1 %}${'x'+'ssTPL'}{% endif %}", "template", False),
]
TEMPLATE_MARKERS = ("xssTPL", "7777777")  # what payload 17 becomes once evaluated
# Link addresses: the editor refuses anything but https://, so these must come back refused.
BAD_URLS = [
    "javascript:__xss(9)",
    " JaVaScRiPt:__xss(9)",
    "data:text/html,<script>__xss(11)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
]
# ... and these https:// addresses are accepted, so they must stay inside their attribute.
NASTY_HTTPS = [
    'https://evil.example/"><svg/data-xss/onload=__xss(3)>',
    "https://evil.example/'onmouseover='__xss(6)'data-xss='",
]


def _careless(payload: Payload) -> str:
    """The markup a careless page would produce from the payload."""
    text = payload.text
    if payload.careless == "unescaped":  # unescaped once too often
        while html.unescape(text) != text:
            text = html.unescape(text)
    elif payload.careless == "json":
        text = json.loads(f'"{text}"')
    elif payload.careless == "filtered":  # a filter that strips <script> tags once
        text = re.sub(r"(?i)</?script>", "", text)
    elif payload.careless == "template":  # staff text used as a template
        text = jinja2.Environment().from_string(text).render()
    return text


# --- the detector --------------------------------------------------------------------------

# Anything in the DOM that only our data could have put there. The app's own pages have no
# script, frame, event handler, javascript:/data: link or `data-xss` attribute at all.
SCAN = """() => {
  const found = [];
  const show = (el) => (el.outerHTML || el.nodeName).slice(0, 160);
  const banned = new Set(['script', 'iframe', 'frame', 'frameset', 'object', 'embed',
                          'applet', 'base', 'portal']);
  const urls = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'data',
                        'poster', 'background', 'lowsrc', 'dynsrc', 'codebase', 'cite']);
  const protocol = (value) => {
    try { return new URL(value, document.baseURI).protocol; } catch (e) { return ''; }
  };
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.localName.toLowerCase();
      if (banned.has(tag)) found.push('element: ' + show(el));
      if (tag === 'meta' && el.hasAttribute('http-equiv')) found.push('meta: ' + show(el));
      if (tag === 'style' && /xss/i.test(el.textContent)) found.push('style: ' + show(el));
      if (tag === 'link' && /xss/i.test(el.getAttribute('href') || '')
          && /stylesheet|import|preload|prefetch|icon/i.test(el.getAttribute('rel') || ''))
        found.push('link: ' + show(el));
      for (const attr of Array.from(el.attributes)) {
        const name = attr.name.toLowerCase(), value = attr.value;
        if (name.startsWith('on')) found.push('handler: ' + show(el));
        else if (name === 'data-xss' || name === 'srcdoc') found.push('attribute: ' + show(el));
        else if (name === 'style' && /xss|expression|javascript|url\\s*\\(/i.test(value))
          found.push('style attribute: ' + show(el));
        else if (urls.has(name)) {
          const scheme = protocol(value);
          const image = /^\\s*data:image\\//i.test(value);
          if (['javascript:', 'vbscript:'].includes(scheme) || (scheme === 'data:' && !image))
            found.push('url: ' + show(el));
        }
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  if (/^XSS-/.test(document.title)) found.push('ran: the title is now ' + document.title);
  return found;
}"""


class Watch:
    """Chromium contexts that report every sign of injected markup into `findings`, and
    every page that should have shown a payload as text but did not into `unshown`."""

    def __init__(self, browser):
        self.browser = browser
        self.findings: list[str] = []
        self.unshown: list[str] = []
        self.checked: list[str] = []
        self.where = ""
        self._contexts: list = []
        self._careless_pages: dict = {}
        self._served: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.loose = self._context("no-CSP", bypass_csp=True)
        self.replayer = self.page(self.loose)

    def close(self) -> None:
        for context in self._contexts:
            context.close()

    def verdict(self) -> None:
        problems = self.findings + [f"{where}: no payload shown" for where in self.unshown]
        assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)

    # contexts and pages

    def context(self):
        """A context that enforces the site's CSP (one per staff member: own cookies)."""
        return self._context("CSP", bypass_csp=False)

    def _context(self, mode: str, bypass_csp: bool):
        context = self.browser.new_context(
            bypass_csp=bypass_csp, locale="en-GB", viewport={"width": 1280, "height": 900}
        )
        context.mode = mode
        context.expose_binding("__xss", lambda source, n=None: self._found(mode, f"ran __xss({n})"))
        context.route("**/*", self._serve)
        self._contexts.append(context)
        return context

    def page(self, context):
        page = context.new_page()
        page.set_default_timeout(15_000)
        mode = context.mode
        page.on("dialog", lambda dialog: self._dialog(mode, dialog))
        page.on("pageerror", lambda error: self._found(mode, f"script error: {error}"))
        page.on("console", lambda message: self._console(mode, message))
        page.on("request", lambda request: self._request(mode, page, request))
        return page

    def _dialog(self, mode: str, dialog) -> None:
        self._found(mode, f"ran {dialog.type}({dialog.message!r})")
        dialog.dismiss()

    def _console(self, mode: str, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "xss" in text.lower():
            self._found(mode, f"console: {text[:300]}")

    def _request(self, mode: str, page, request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            return  # the page itself (a search for a payload has it in its address)
        if "xss" in request.url.lower():
            self._found(mode, f"request: {request.url[:200]}")

    def _found(self, mode: str, what: str) -> None:
        self.findings.append(f"{self.where} [{mode}] {what}")

    def _serve(self, route) -> None:
        """Pages to replay (and the control's careless pages) come from `_served`; other
        addresses on 127.0.0.1 go to the app, anything else nowhere."""
        request = route.request
        stored = self._served.pop(request.url, None) if request.is_navigation_request() else None
        if stored is not None:
            status, headers, body = stored
            route.fulfill(status=status, headers=headers, body=body)
        elif request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            route.abort()

    # checking pages

    def goto(self, page, url: str, shows_payload: bool = True, **expect) -> None:
        self.where = url
        self.check(page, page.goto(url), shows_payload, **expect)

    def submit(self, page, button, shows_payload: bool = True, **expect) -> None:
        """Click a form button and check the page that comes back."""
        self.where = f"form on {page.url}"
        with page.expect_navigation() as navigation:
            button.click()
        self.check(page, navigation.value, shows_payload, **expect)

    def check(self, page, response, shows_payload=True, status=None, content_type=None) -> None:
        """The page as served (CSP on), then the same bytes with CSP off."""
        url = page.url
        assert response is not None, url
        assert response.status < 500, f"{url}: HTTP {response.status}"
        if status is not None:
            assert response.status == status, f"{url}: HTTP {response.status}"
        headers = response.headers
        if content_type is not None:
            assert headers.get("content-type", "").startswith(content_type), (url, headers)
        assert headers.get("x-content-type-options") == "nosniff", url
        assert headers.get("content-security-policy") == POLICY, url
        body = response.body()
        page.wait_for_timeout(SETTLE_MS // 4)
        self.where = url
        self.checked.append(url)
        self._scan(page, "CSP")
        source = body.decode("utf-8", "replace")
        self.template_markers(source)
        text = page.evaluate("() => document.documentElement.textContent")
        if shows_payload and "__xss(" not in text and "__xss(" not in source:
            self.unshown.append(url)  # nothing to prove on this page: a gap in the test
        self._replay(url, response.status, {"content-type": headers["content-type"]}, body)

    def email(self, label: str, markup: str, shows_payload: bool = True) -> None:
        """An email's HTML as a mail reader without CSP would render it."""
        self.where = label
        self.checked.append(label)
        self.template_markers(markup)
        if shows_payload and "__xss(" not in html.unescape(markup):
            self.unshown.append(label)
        url = f"http://mail.invalid/{len(self.checked)}"
        self._replay(url, 200, {"content-type": "text/html; charset=utf-8"}, markup.encode())

    def careless(self, label: str, markup: str, context) -> None:
        """For the control test: a careless page with the site's headers, in `context`."""
        self.where = label
        self.template_markers(markup)
        headers = {"content-type": "text/html; charset=utf-8", "content-security-policy": POLICY}
        self.checked.append(label)
        url = f"http://careless.invalid/{len(self.checked)}"
        self._served[url] = (200, headers, markup.encode())
        if context not in self._careless_pages:
            self._careless_pages[context] = self.page(context)
        page = self._careless_pages[context]
        page.goto(url)
        page.wait_for_timeout(SETTLE_MS)
        self._scan(page, context.mode)

    def _replay(self, url: str, status: int, headers: dict[str, str], body: bytes) -> None:
        """The same bytes at the same address, in the context without CSP."""
        self._served[url] = (status, headers, body)
        self.replayer.goto(url)
        assert url not in self._served and self.replayer.url == url, f"not replayed: {url}"
        self.replayer.wait_for_timeout(SETTLE_MS)
        self._scan(self.replayer, "no-CSP")

    def _scan(self, page, mode: str) -> None:
        for problem in page.evaluate(SCAN):
            self._found(mode, problem)
        if len(page.frames) > 1:
            self._found(mode, f"{len(page.frames) - 1} frame(s) in the page")

    def template_markers(self, body: str) -> None:
        for marker in TEMPLATE_MARKERS:
            if marker in body:
                self._found("source", f"template evaluated: {marker!r} in the page")


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def watch(browser):
    watch = Watch(browser)
    yield watch
    watch.close()
    for finding in watch.findings:  # shown with a failure that stopped before the verdict
        print(finding)


# --- the control: the detector sees each payload when a page lets it through ---------------


def _careless_page(markup: str) -> str:
    return (
        f"<!doctype html><html><head><title>{markup}</title></head><body>"
        f"<p>{markup}</p><input value=\"{markup}\"><input value='{markup}'>"
        f"<textarea>{markup}</textarea></body></html>"
    )


def test_the_detector_catches_every_payload_a_careless_page_lets_through(watch):
    strict = watch.context()
    for payload in PAYLOADS:
        for context in (strict, watch.loose):
            watch.findings.clear()
            page = _careless_page(_careless(payload))
            watch.careless(f"payload {payload.number}", page, context)
            assert watch.findings, f"payload {payload.number} went unnoticed ({context.mode})"
            ran = [finding for finding in watch.findings if "] ran" in finding]
            if context is strict:
                assert not ran, watch.findings  # the site's CSP stops them all...
            elif payload.runs:
                assert ran, f"payload {payload.number} did not run: {watch.findings}"
    for url in BAD_URLS[:3]:  # ... and links to such addresses are seen as well
        watch.findings.clear()
        watch.careless(url, f'<a href="{url}">x</a>', strict)
        assert watch.findings, url


# --- the app, served on 127.0.0.1 ------------------------------------------------------------


@pytest.fixture
def live(settings, tmp_path, watch):
    from alerts.store import Database

    database = Database(f"sqlite:///{tmp_path / 'xss.sqlite3'}")  # SQLite: see the docstring
    site = Site(settings, database)
    with serve(site.app) as base_url:
        yield database, base_url, watch
    database.dispose()


def _staff(database, email: str, role: str, name: str) -> None:
    with database.session() as session:
        user = accounts.add(session, email, name, role, GOOD, NOW)
        user.must_change_password = False


def _log_in(watch: Watch, base_url: str, email: str):
    """A staff member's own browser context (CSP on), logged in through the form."""
    page = watch.page(watch.context())
    page.goto(f"{base_url}/staff/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(GOOD)
    watch.submit(page, page.get_by_role("button", name="Log in"), shows_payload=False)
    assert page.url == f"{base_url}/staff"
    return page


def _button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def _outbox(watch: Watch, database, settings, expected: int, shown: bool) -> list[str]:
    """Deliver through the real path (file channel) and render the HTML part of every .eml
    written, as the subscriber's mail reader would. Returns those HTML bodies."""
    Dispatcher.from_settings(database, settings).drain()
    written = sorted((settings.outbox_dir() / "email").glob("*.eml"))
    assert len(written) == expected
    bodies = []
    for path in written:
        message = email.message_from_bytes(path.read_bytes())
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                watch.where = path.name
                watch.template_markers(part.get_payload(decode=True).decode())
            if part.get_content_type() == "text/html":
                markup = part.get_payload(decode=True).decode()
                watch.email(f"outbox/{path.name}", markup, shows_payload=shown)
                bodies.append(markup)
    assert len(bodies) == expected
    return bodies


def _text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", markup))


def _public_pages(watch: Watch, base_url: str, alert_id: int, payload_in_text: bool) -> None:
    """Everything the public sees of a sent alert: its page in each language, the archive
    and its search (also for payloads: the search box shows them), the three feeds."""
    page = watch.page(watch.context())
    for language in LANGUAGES:
        watch.goto(page, f"{base_url}/alerts/{alert_id}?lang={language}", payload_in_text)
    watch.goto(page, f"{base_url}/alerts?lang=nl", payload_in_text)
    watch.goto(page, f"{base_url}/alerts?q=Forti&lang=fr", payload_in_text)
    for number in (2, 4, 5):
        query = quote(_text(number))
        watch.goto(page, f"{base_url}/alerts?q={query}&tier=urgent&exploited=1&lang=de")
    for kind, media in FEEDS.items():
        url = f"{base_url}/alerts/feed.{kind}?lang=en"
        watch.goto(page, url, payload_in_text, content_type=media)


FEEDS = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}


# --- (a) payloads from the feeds -----------------------------------------------------------


def _rss_document() -> bytes:
    """A CERT's RSS feed with a payload in every item: title, link, description, category."""
    links = ["javascript:__xss(9)", *NASTY_HTTPS, "data:text/html,<script>__xss(11)</script>"]
    items = []
    for payload in PAYLOADS:
        number = payload.number
        description = (
            f"<p>FortiOS SSL-VPN flaw CVE-2026-{20000 + number} is exploited.</p>{payload.text}"
        )
        items.append(
            f"<item><title>{xml_escape(f'FortiGate flaw exploited {payload.text}')}</title>"
            f"<link>{xml_escape(links[number % len(links)])}</link>"
            f"<guid isPermaLink='false'>cert-item-{number}</guid>"
            f"<description>{xml_escape(description)}</description>"
            f"<category>{xml_escape(payload.text)}</category>"
            "<pubDate>Wed, 25 Nov 2026 08:00:00 GMT</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>CERT advisories</title><link>https://cert.example/</link>"
        f"{''.join(items)}</channel></rss>"
    ).encode()


def _kev_document() -> bytes:
    """CISA's known-exploited catalogue with payloads in every text field."""
    entries = [
        {
            "cveID": f"CVE-2026-{30000 + number}",
            "vendorProject": f"Fortinet {PAYLOADS[number].text}",
            "product": f"FortiOS {PAYLOADS[number + 1].text}",
            "vulnerabilityName": f"KEV entry {number}: FortiOS {PAYLOADS[number + 2].text}",
            "dateAdded": "2026-11-20",
            "shortDescription": " ".join(p.text for p in PAYLOADS),
            "requiredAction": f"{PAYLOADS[6].text} {PAYLOADS[number + 3].text}",
            "dueDate": "2026-12-11",
            "knownRansomwareCampaignUse": "Known",
            "notes": f"https://fortiguard.example/psirt ; {NASTY_HTTPS[0]} ; javascript:__xss(9)",
        }
        for number in range(3)
    ]
    return json.dumps({"title": "KEV", "count": 3, "vulnerabilities": entries}).encode()


def _raw_records() -> list[AdvisoryRecord]:
    """Records as a careless parser might hand them over: markup left in every field (the
    pages must escape it all the same)."""
    return [
        AdvisoryRecord(
            item_id=f"raw-{payload.number}",
            title=f"FortiGate raw record {payload.text}",
            summary_text=payload.text,
            summary_html=payload.text,
            url=NASTY_HTTPS[payload.number % 2],
            links=list(NASTY_HTTPS),
            cve_ids=[f"CVE-2026-{40000 + payload.number}"],
            vendors=[f"Fortinet {payload.text}"],
            products=[f"FortiGate {payload.text}"],
            known_exploited=True,
            facts={"required_action": payload.text, "categories": [payload.text]},
        )
        for payload in PAYLOADS
    ]


def _ingest(database) -> None:
    for source, document, kind in (
        ("certfr-alertes", _rss_document(), "rss"),
        ("cisa-kev", _kev_document(), "cisa-kev"),
    ):
        result = parse(document, kind, "https://cert.example/feed.xml")
        assert len(result.advisories) in (len(PAYLOADS), 3)
        store_result(database, source, result, PollSummary(source))
    raw = ParseResult(format="rss", advisories=_raw_records())
    store_result(database, "raw-records", raw, PollSummary("raw-records"))
    # A feed that fails with the publisher's words in its error (shown on the feeds page).
    words = " ".join(p.text for p in PAYLOADS)
    with database.session() as session:
        session.add(
            Feed(
                name="cert-broken",
                url=NASTY_HTTPS[0],
                format="rss",
                disabled_reason=f"410 Gone: {_text(1)}",
                last_error=f"not a readable feed: {words}",
                consecutive_failures=3,
                last_polled_at=datetime.now(UTC),
            )
        )
    summary = PollSummary("cert-broken", status="error", errors=[f"HTTP 500: {words}"])
    record_run(database, summary, datetime.now(UTC))


def test_payloads_from_the_feeds_never_run_in_any_page_or_email(live, settings):
    database, base_url, watch = live
    _staff(database, "ed@gov.example", "editor", "Ed")
    _staff(database, "ap@gov.example", "approver", "Ann")
    for number, language in enumerate(LANGUAGES):
        add_subscribers(database, settings, 1, start=number, language=language)
    _ingest(database)

    public = watch.page(watch.context())
    watch.goto(public, f"{base_url}/advisories")
    watch.goto(public, f"{base_url}/advisories?q={quote(PAYLOADS[1].text)}&cve=%22%3E&source=x")
    watch.goto(public, f"{base_url}/?q=FortiGate&source=raw-records&page=1")
    for query in ("", "?q=Forti", f"?q={quote(PAYLOADS[0].text)}"):
        watch.goto(public, f"{base_url}/api/advisories{query}", content_type="application/json")

    editor = _log_in(watch, base_url, "ed@gov.example")
    watch.goto(editor, f"{base_url}/staff/queue")
    watch.goto(editor, f"{base_url}/staff/queue?tier=newsletter")  # the CERT's items
    watch.goto(editor, f"{base_url}/staff/feeds")
    watch.goto(editor, f"{base_url}/staff/queue?q={quote(PAYLOADS[3].text)}&source=%22%3E")
    watch.goto(editor, f"{base_url}/staff/queue")
    for row in ("KEV entry", "FortiGate raw record"):
        editor.locator("tbody tr", has_text=row).first.locator("input[name=advisory]").check()
    watch.submit(editor, _button(editor, "Make an alert from the chosen advisories"))
    assert editor.url.endswith("/edit")
    alert_id = int(editor.url.split("/")[-2])
    assert "__xss(" in editor.locator("#actions_en").input_value()  # the publisher's advice
    watch.submit(editor, _button(editor, "Save"))
    _staff_views(watch, editor, base_url, alert_id, everywhere=False)
    watch.submit(editor, _button(editor, "Submit for approval"))

    approver = _log_in(watch, base_url, "ap@gov.example")
    watch.goto(approver, f"{base_url}/staff/alerts/{alert_id}")
    watch.submit(approver, _button(approver, "Approve"))
    watch.submit(approver, _button(approver, "Send now"))
    bodies = _outbox(watch, database, settings, len(LANGUAGES), shown=False)
    assert any("__xss(" in _text_of(body) for body in bodies)  # the English advice
    _public_pages(watch, base_url, alert_id, payload_in_text=False)
    watch.goto(public, f"{base_url}/alerts/{alert_id}?lang=en")  # the advice is shown

    watch.verdict()


def _staff_views(watch: Watch, page, base_url: str, alert_id: int, everywhere: bool) -> None:
    """The alert's staff page, the list of alerts, and every email preview offered.
    `everywhere`: payloads in every language's text (else in the English advice only)."""
    watch.goto(page, f"{base_url}/staff/alerts/{alert_id}")
    watch.goto(page, f"{base_url}/staff/alerts", shows_payload=everywhere)
    for language in LANGUAGES:
        for kind, media in (("html", "text/html"), ("txt", "text/plain")):
            url = f"{base_url}/staff/alerts/{alert_id}/preview/{language}.{kind}"
            shown = everywhere or language == "en"
            watch.goto(page, url, shows_payload=shown, content_type=media)
    page.goto(f"{base_url}/staff/alerts/{alert_id}")  # back to its buttons


# --- (b) payloads typed in by staff ----------------------------------------------------------


def _text(number: int) -> str:
    return PAYLOADS[number - 1].text


def _alert_fields() -> dict[str, str]:
    """Every text field of the editor, in every language, full of payloads."""
    short = [p.text for p in PAYLOADS if len(p.text) <= 100]
    fields = {}
    for index, language in enumerate(LANGUAGES):
        rotated = PAYLOADS[index:] + PAYLOADS[:index]
        fields |= {
            f"title_{language}": f"FortiGate {_text(7)} {short[index]}",  # </title> breakout
            f"what_{language}": "\n\n".join(p.text for p in rotated),
            f"affected_{language}": "\n".join(p.text for p in rotated[::2]),
            f"actions_{language}": "\n".join(p.text for p in rotated[:10]),
            f"urgency_{language}": short[-1 - index],
        }
    return fields


def _fill(page, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        page.locator(f"#{name}").fill(value)


def _firm_form(page, website: str) -> None:
    """The administrator's firm form: payloads in every free text field."""
    _fill(
        page,
        {
            "name": f"Secure {_text(4)} {_text(2)}",
            "enterprise_number": "0123.456.749",
            "website": website,
            "email": "help@secure.example",
            "phone": "+32 2 511 22 33",
            "certifications": f"{_text(1)} ; {_text(3)} ; {_text(16)}",
            "vetted_on": date.today().isoformat(),
            "expires_on": (date.today() + timedelta(days=365)).isoformat(),
            "notes": "\n".join(p.text for p in PAYLOADS),
        },
    )
    for name, value in (
        ("regions", "BE-VAN"),
        *(("languages", language) for language in LANGUAGES),
        ("specialities", "incident-response"),
        ("specialities", "network-firewall"),
        ("kmo_portefeuille", "1"),
    ):
        page.locator(f"input[name={name}][value='{value}']").check()
    page.locator("#status").select_option("vetted")


def test_payloads_typed_in_by_staff_never_run_in_any_page_or_email(live, settings):
    database, base_url, watch = live
    _staff(database, "admin@gov.example", "admin", "Ada")
    _staff(database, "ed@gov.example", "editor", f"Ed {_text(3)} {_text(5)}")
    _staff(database, "ap@gov.example", "approver", f"Ann {_text(2)} {_text(7)}")
    for number, language in enumerate(LANGUAGES):
        add_subscribers(database, settings, 1, start=number, language=language)
    _advisory(database, 1, "FortiOS SSL-VPN flaw exploited")

    # An administrator adds a colleague and a security firm.
    admin = _log_in(watch, base_url, "admin@gov.example")
    watch.goto(admin, f"{base_url}/staff/users")
    _fill(admin, {"name": f"{_text(5)}{_text(6)}"[:120], "new-email": "new@gov.example"})
    watch.submit(admin, _button(admin, "Add the account"))
    watch.goto(admin, f"{base_url}/staff/firms/new", shows_payload=False)
    _firm_form(admin, website="javascript:__xss(9)")
    watch.submit(admin, _button(admin, "Save"), status=400)
    assert "an https:// address" in admin.locator("main").inner_text()  # refused
    admin.locator("#website").fill(NASTY_HTTPS[0])
    watch.submit(admin, _button(admin, "Save"))
    firm_page = admin.url
    firm_id = int(firm_page.split("/")[-1])
    watch.goto(admin, f"{base_url}/staff/firms/{firm_id}/edit")
    watch.goto(admin, f"{base_url}/staff/firms")
    watch.goto(admin, f"{base_url}/staff/firms/{firm_id}/link")
    own_page = base_url + "/firm/" + admin.locator("#link").inner_text().split("/firm/")[1]

    # The firm opens its own page and asks for a correction; staff read and refuse it.
    firm = watch.page(watch.context())
    watch.goto(firm, own_page)
    firm.locator("#text").fill("Please change: " + " ".join(p.text for p in PAYLOADS))
    watch.submit(firm, _button(firm, "Send the request"))
    watch.goto(admin, f"{base_url}/staff/corrections")
    admin.locator("input[name=note]").first.fill(_text(8))
    watch.submit(admin, _button(admin, "Refuse"), shows_payload=False)

    # An editor writes payloads into every field of an alert, in every language.
    editor = _log_in(watch, base_url, "ed@gov.example")
    watch.goto(editor, f"{base_url}/staff/queue")
    editor.locator("input[name=advisory]").first.check()
    watch.submit(editor, _button(editor, "Make an alert from the chosen advisories"))
    alert_id = int(editor.url.split("/")[-2])
    _fill(editor, _alert_fields())
    refused = "\n".join(f"{_text(n + 1)} | {url}" for n, url in enumerate(BAD_URLS))
    editor.locator("#links").fill(refused)
    watch.submit(editor, _button(editor, "Save"), status=400)  # the form again, as typed
    assert "each link needs an https:// address" in editor.locator("main").inner_text()
    assert editor.locator("#links").input_value() == refused
    accepted = "\n".join(f"{_text(n + 7)} | {url}" for n, url in enumerate(NASTY_HTTPS))
    editor.locator("#links").fill(accepted)
    watch.submit(editor, _button(editor, "Count recipients"))  # the form again, counted
    watch.submit(editor, _button(editor, "Save"))
    assert editor.url.endswith(f"/staff/alerts/{alert_id}")
    _staff_views(watch, editor, base_url, alert_id, everywhere=True)
    watch.submit(editor, _button(editor, "Submit for approval"))

    # The approver sends it back with a reason first, then approves the resubmitted text.
    approver = _log_in(watch, base_url, "ap@gov.example")
    watch.goto(approver, f"{base_url}/staff/alerts/{alert_id}")
    approver.locator("#reason-reject").fill(_text(4) + _text(16))
    watch.submit(approver, _button(approver, "Reject"))
    watch.goto(editor, f"{base_url}/staff/alerts/{alert_id}/edit")
    watch.submit(editor, _button(editor, "Save"))
    watch.submit(editor, _button(editor, "Submit for approval"))
    watch.goto(approver, f"{base_url}/staff/alerts/{alert_id}")
    watch.submit(approver, _button(approver, "Approve"))
    watch.submit(approver, _button(approver, "Send now"))
    _screenshot(approver.context, f"{base_url}/alerts/{alert_id}?lang=en", "xss-public-alert")

    bodies = _outbox(watch, database, settings, len(LANGUAGES), shown=True)
    assert all(f"Secure {_text(4)}" in _text_of(body) for body in bodies)  # the firm, as text
    with database.session() as session:
        content = alert_content(session.get(Alert, alert_id), base_url)
    for language in LANGUAGES:
        newsletter = compose_newsletter([content], language, PLACEHOLDERS, [_payload_firm()])
        watch.email(f"newsletter.{language}.html", newsletter.html)
        watch.template_markers(newsletter.text + newsletter.subject)

    _public_pages(watch, base_url, alert_id, payload_in_text=True)
    public = watch.page(watch.context())
    watch.goto(public, f"{base_url}/firms")
    watch.goto(public, f"{base_url}/firms?lang=nl&region=BE-VAN&speciality=incident-response")
    watch.goto(firm, own_page)  # now with the alert it was shown in
    watch.goto(admin, firm_page)
    watch.goto(admin, f"{base_url}/staff/audit")

    watch.verdict()


def _screenshot(context, url: str, name: str) -> None:
    """For people to look at: the payloads shown as text (test-artifacts is gitignored)."""
    page = context.new_page()
    page.goto(url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.close()


def _payload_firm() -> Firm:
    return Firm(
        name=f"Help {_text(1)}",
        website=NASTY_HTTPS[1],
        phone=_text(3),
        email=f"{_text(2)}@x.example",
        kmo_portefeuille=True,
        specialities=(_text(4), _text(7)),
    )


def test_link_addresses_other_than_https_are_refused_one_by_one():
    """The editor's rule behind the refusal seen in the browser, for each address alone."""
    for url in BAD_URLS:
        with pytest.raises(editing.EditErrors) as refused:
            editing.parse({"tier": "urgent", "links": f"label | {url}"}, LISTS, KNOWN)
        assert set(refused.value.errors) == {"links"}, url
    accepted = editing.parse({"tier": "urgent", "links": "\n".join(NASTY_HTTPS)}, LISTS, KNOWN)
    assert [url for _, url in accepted.links] == NASTY_HTTPS  # kept as text, escaped on output


LISTS = {"families": [], "sectors": [], "regions": []}
