"""FastAPI app: health, the advisory list (HTML) and its JSON twin."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import text

from alerts.maturity.scan import load_scan
from alerts.maturity.service import Scans
from alerts.maturity.web import router as scan_pages
from alerts.queries import (
    AdvisoryFilter,
    advisory_json,
    count_advisories,
    feed_health,
    list_advisories,
)
from alerts.referrals.web import router as referral_pages
from alerts.relevance.service import default_catalogue
from alerts.settings import Settings
from alerts.staff import corrections as staff_corrections
from alerts.staff import feeds as staff_feeds
from alerts.staff import firms as staff_firms
from alerts.staff import maturity as staff_maturity
from alerts.staff import web as staff_pages
from alerts.store import Database
from alerts.web import metrics
from alerts.web.firms import router as firm_pages
from alerts.web.guards import RejectNul
from alerts.web.headers import SecurityHeaders, security_headers
from alerts.web.public import router as public_pages
from alerts.web.webhooks import router as webhook_routes
from subscribers.service import Subscriptions
from subscribers.web import router as subscriber_pages

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
PAGE_SIZE = 50
log = logging.getLogger(__name__)


def create_app(
    settings: Settings, database: Database, subscriptions: Subscriptions | None = None
) -> FastAPI:
    # No API schema in public: it would list every staff route.
    app = FastAPI(title="SME threat alerts", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RejectNul)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so refusals carry it too
    # An unhandled error is answered by Starlette's outermost middleware, outside ours: the
    # answer carries the security headers itself (the error still goes to the log).
    app.add_exception_handler(Exception, _internal_error)
    app.state.settings = settings
    app.state.catalogue = default_catalogue()
    app.state.subscriptions = subscriptions or Subscriptions.from_settings(database, settings)
    app.state.scans = Scans(database, load_scan(catalogue=app.state.catalogue))
    app.include_router(scan_pages)  # before /preferences/{token}/{action}
    app.include_router(subscriber_pages)
    app.include_router(webhook_routes)
    app.include_router(public_pages)
    app.include_router(firm_pages)
    staff_pages.install(app)
    app.include_router(staff_feeds.router)
    app.include_router(referral_pages)
    app.include_router(staff_corrections.router)
    app.include_router(staff_firms.router)
    app.include_router(staff_maturity.router)
    app.state.database = database
    metrics.install(app)
    templates = Jinja2Templates(directory=str(TEMPLATES))  # autoescape is on for .html

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            with database.session() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # any database failure means not ready; details go to the log only
            log.exception("readiness check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        body = {"database": database.dialect} | _scheduler_state(app)
        if body.get("scheduler") == "stopped":
            return JSONResponse({"status": "unavailable"} | body, 503)
        return JSONResponse({"status": "ok"} | body)

    @app.get("/api/advisories")
    def api_advisories(
        source: str | None = Query(None, max_length=100),
        cve: str | None = Query(None, max_length=30),
        q: str | None = Query(None, max_length=200),
        page: int = Query(1, ge=1, le=10_000),
    ) -> dict:
        filters = AdvisoryFilter(source=source, cve=cve, text=q)
        with database.session() as session:
            rows = list_advisories(session, filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            return {
                "total": count_advisories(session, filters),
                "page": page,
                "items": [advisory_json(a) for a in rows],
            }

    @app.get("/", response_class=HTMLResponse)
    @app.get("/advisories", response_class=HTMLResponse)
    def advisories_page(
        request: Request,
        source: str | None = Query(None, max_length=100),
        cve: str | None = Query(None, max_length=30),
        q: str | None = Query(None, max_length=200),
        page: int = Query(1, ge=1, le=10_000),
    ):
        filters = AdvisoryFilter(source=source or None, cve=cve or None, text=q or None)
        with database.session() as session:
            rows = list_advisories(session, filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            total = count_advisories(session, filters)
            feeds = feed_health(session)
        return templates.TemplateResponse(
            request,
            "advisories.html",
            {
                "advisories": rows,
                "total": total,
                "page": page,
                "page_size": PAGE_SIZE,
                "filters": {"source": source or "", "cve": cve or "", "q": q or ""},
                "feeds": feeds,
                "now": datetime.now(UTC),
            },
        )

    @app.exception_handler(HTTPException)
    def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    return app


def _internal_error(request: Request, _error: Exception) -> PlainTextResponse:
    headers = security_headers(request.url.scheme)
    return PlainTextResponse("Internal error. It has been logged.", 500, headers=headers)


def _scheduler_state(app: FastAPI) -> dict:
    """{"scheduler": "running" | "stopped"} once `alerts run` attached its scheduler; nothing
    for a web-only app (tests, `create_app` alone), whose readiness is the database's."""
    scheduler = getattr(app.state, "scheduler", None)
    if scheduler is None:
        return {}
    return {"scheduler": "running" if scheduler.running else "stopped"}
