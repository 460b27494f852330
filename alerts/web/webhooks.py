"""Provider webhooks: SendGrid's Event Webhook and Twilio's SMS callbacks, turned into
suppressions and delivery receipts (alerts.delivery.receipts) once their signatures check
out, both in one transaction.

A request is refused before anything is stored when the webhook is not configured (503),
too large (413), unsigned, wrongly signed or stale (403), or not what the provider sends
(400). A genuine post answers 200 even when it names events or addresses we do not know,
so providers stop retrying. Logs carry counts only: never an address, never a key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from functools import lru_cache
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from starlette.concurrency import run_in_threadpool

from alerts.delivery.channels.base import secret
from alerts.delivery.receipts import (
    Receipt,
    ReceiptCounts,
    apply_events,
    sendgrid_receipts,
    twilio_receipt,
)
from subscribers.service import Subscriptions
from subscribers.webhooks import (
    SuppressionEvent,
    apply,
    sendgrid_suppressions,
    twilio_suppressions,
)

log = logging.getLogger(__name__)
router = APIRouter()

SENDGRID_PATH = "/webhooks/sendgrid"
TWILIO_PATH = "/webhooks/twilio"
SMS_PATH = "/webhooks/sms"  # the provider-neutral name of the same SMS webhook
MAX_BODY_BYTES = 1024 * 1024
MAX_SIGNATURE_AGE = 600  # seconds either way: an older signed post is a replay
MAX_FORM_FIELDS = 200
TIMESTAMP = re.compile(r"[0-9]{1,12}")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# --- SendGrid -----------------------------------------------------------------------------


@router.post(SENDGRID_PATH)
async def sendgrid_events(request: Request) -> JSONResponse:
    service, settings = _service(request), request.app.state.settings
    key = settings.sendgrid_webhook_public_key
    if not key:
        raise _refuse(503, "sendgrid", "not configured: set ALERTS_SENDGRID_WEBHOOK_PUBLIC_KEY")
    body = await read_capped(request, MAX_BODY_BYTES)
    headers = request.headers
    problem = sendgrid_signature_problem(
        _verifier(key),
        body,
        headers.get(EventWebhookHeader.SIGNATURE),
        headers.get(EventWebhookHeader.TIMESTAMP),
        service.clock().timestamp(),
    )
    if problem:
        raise _refuse(403, "sendgrid", problem)
    events = _json_array(body)
    stored, receipts = await run_in_threadpool(
        _store,
        service,
        sendgrid_suppressions(events),
        "sendgrid-webhook",
        sendgrid_receipts(events),
        settings.delivery_max_attempts,
    )
    log.info(
        "sendgrid webhook: %d events, %d new suppressions, %s",
        len(events),
        stored,
        _receipt_log(receipts),
    )
    return JSONResponse({"received": len(events), "suppressed": stored})


def sendgrid_signature_problem(
    verifier: EventWebhook, body: bytes, signature: str | None, timestamp: str | None, now: float
) -> str | None:
    """Why a post is not SendGrid's, fresh (None when it is): ECDSA over timestamp + body."""
    if not signature or not timestamp:
        return "signature headers missing"
    if not TIMESTAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > MAX_SIGNATURE_AGE:
        return "signature timestamp missing or more than 10 minutes away"
    try:
        valid = verifier.verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, TypeError):  # not UTF-8, not base64, not a DER signature
        valid = False
    return None if valid else "signature does not match"


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def _json_array(body: bytes) -> list:
    try:
        events = json.loads(body)
    except ValueError:
        raise _refuse(400, "sendgrid", "body is not JSON") from None
    if not isinstance(events, list):
        raise _refuse(400, "sendgrid", "body is not a JSON array of events")
    return events


# --- Twilio -------------------------------------------------------------------------------


@router.post(TWILIO_PATH)
@router.post(SMS_PATH)
async def twilio_events(request: Request) -> Response:
    """Inbound messages and status callbacks alike; an empty TwiML answer sends no reply.
    Twilio signs the URL it called, so the signature is checked against that path."""
    service, settings = _service(request), request.app.state.settings
    token = secret(settings.twilio_auth_token)
    if not token:
        raise _refuse(503, "twilio", "not configured: set ALERTS_TWILIO_AUTH_TOKEN")
    params = _form_pairs(await read_capped(request, MAX_BODY_BYTES))
    url = settings.public_base_url.rstrip("/") + _route_path(request)
    if request.url.query:
        url += "?" + request.url.query
    given = request.headers.get("X-Twilio-Signature") or ""
    expected = twilio_signature(token, url, params)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise _refuse(403, "twilio", "signature does not match")
    form: dict[str, str] = {}
    for name, value in params:
        form.setdefault(name, value)
    receipt = twilio_receipt(form, request.query_params.get("reference"))
    stored, receipts = await run_in_threadpool(
        _store,
        service,
        twilio_suppressions(form),
        "twilio-webhook",
        [receipt] if receipt else [],
        settings.delivery_max_attempts,
    )
    log.info("twilio webhook: %d new suppressions, %s", stored, _receipt_log(receipts))
    return Response(EMPTY_TWIML, media_type="text/xml")


def _route_path(request: Request) -> str:
    """The path of the route that matched (/webhooks/twilio or /webhooks/sms): the request's
    own path, without any root path a proxy put in front of it."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or request.url.path


def twilio_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 (auth token as key) over the full URL followed
    by every POST parameter's name and value, sorted by name then value, in base64."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # not UTF-8, or too many fields
        raise _refuse(400, "twilio", "body is not a form Twilio would send") from None


# --- shared -------------------------------------------------------------------------------


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit`, whatever Content-Length says."""
    declared = request.headers.get("content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"a webhook body may not exceed {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"a webhook body may not exceed {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _store(
    service: Subscriptions,
    events: list[SuppressionEvent],
    source: str,
    receipts: list[Receipt],
    max_attempts: int,
) -> tuple[int, ReceiptCounts]:
    """Suppressions, then receipts, in one transaction; the provider is the source's first
    word ("sendgrid-webhook" -> "sendgrid")."""
    provider = source.removesuffix("-webhook")
    with service.database.session() as session:
        now = service.clock()
        stored = apply(session, service.signer, events, source, now)
        counts = apply_events(session, provider, receipts, now, max_attempts=max_attempts)
        return stored, counts


def _receipt_log(counts: ReceiptCounts) -> str:
    return (
        f"{counts.stored} new receipts ({counts.duplicates} repeated, {counts.unknown} for"
        f" unknown messages), {counts.changed} statuses changed"
    )


def _service(request: Request) -> Subscriptions:
    return request.app.state.subscriptions


def _refuse(status: int, provider: str, reason: str) -> HTTPException:
    log.warning("%s webhook refused (%d): %s", provider, status, reason)
    return HTTPException(status, f"{provider} webhook: {reason}")
