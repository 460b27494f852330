"""GET /metrics: Prometheus text read from the database at scrape time.

Every figure comes from one aggregate query (GROUP BY), so a scrape costs the same whatever
the number of advisories or outbox rows. Each app has its own CollectorRegistry: tests can
build many apps, and nothing here touches prometheus_client's global registry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.delivery import outbox
from alerts.delivery.models import DeliveryEvent
from alerts.models import Advisory, Feed, PollRun
from alerts.scheduling import stored_jobs

log = logging.getLogger(__name__)
UNSCORED = "unscored"  # the tier label of advisories not scored yet


def feed_metrics(session: Session) -> list[Metric]:
    polls = CounterMetricFamily(
        "alerts_feed_polls_total", "Polls per feed and outcome", labels=["feed", "status"]
    )
    query = select(PollRun.source, PollRun.status, func.count()).group_by(
        PollRun.source, PollRun.status
    )
    for source, status, count in session.execute(query):
        polls.add_metric([source, status], count)
    failures = GaugeMetricFamily(
        "alerts_feed_consecutive_failures", "Failed polls in a row", labels=["feed"]
    )
    success = GaugeMetricFamily(
        "alerts_feed_last_success_timestamp_seconds",
        "Unix time of the last successful poll",
        labels=["feed"],
    )
    feeds = select(Feed.name, Feed.consecutive_failures, Feed.last_success_at)
    for name, failed, last_success in session.execute(feeds):
        failures.add_metric([name], failed or 0)
        if last_success is not None:
            success.add_metric([name], last_success.timestamp())
    return [polls, failures, success]


def advisory_metrics(session: Session) -> list[Metric]:
    tiers = GaugeMetricFamily("alerts_advisories", "Stored advisories per tier", labels=["tier"])
    query = select(Advisory.tier, func.count()).group_by(Advisory.tier)
    for tier, count in session.execute(query):
        tiers.add_metric([tier or UNSCORED], count)
    return [tiers]


def delivery_metrics(session: Session) -> list[Metric]:
    depth = GaugeMetricFamily(
        "alerts_outbox_messages",
        "Outbox messages per channel and status (rows, and batches' recipients)",
        labels=["channel", "status"],
    )
    for (channel, status), count in sorted(outbox.counts(session).items()):
        depth.add_metric([channel, status], count)
    events = CounterMetricFamily(
        "alerts_delivery_events_total",
        "Provider receipts and webhook events",
        labels=["provider", "event"],
    )
    query = select(DeliveryEvent.provider, DeliveryEvent.event, func.count()).group_by(
        DeliveryEvent.provider, DeliveryEvent.event
    )
    for provider, event, count in session.execute(query):
        events.add_metric([provider, event], count)
    return [depth, events]


def scheduler_metrics(session: Session) -> list[Metric]:
    """From the job store, on every instance: alert when a job's next run lies in the past
    (no instance holds the scheduler)."""
    upcoming = GaugeMetricFamily(
        "alerts_scheduler_next_run_timestamp_seconds",
        "When each scheduled job runs next (Unix time)",
        labels=["job"],
    )
    for job, moment in stored_jobs(session).items():
        if moment is not None:
            upcoming.add_metric([job], moment.timestamp())
    return [upcoming]


class ServiceCollector(Collector):
    """Reads the app's database (and scheduler, when `alerts run` attached one) per scrape."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.state.database.session() as session:
            metrics = feed_metrics(session) + advisory_metrics(session)
            metrics += delivery_metrics(session) + scheduler_metrics(session)
        yield from metrics
        scheduler = getattr(self.app.state, "scheduler", None)
        if scheduler is not None:
            running = GaugeMetricFamily("alerts_scheduler_running", "1 while the scheduler runs")
            running.add_metric([], 1 if scheduler.running else 0)
            yield running


def install(app: FastAPI) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(app))
    app.state.metrics_registry = registry

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        try:
            body = generate_latest(request.app.state.metrics_registry)
        except Exception:  # a failed scrape shows as down in Prometheus; details in the log
            log.exception("metrics: database unreachable")
            return Response("database unreachable\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE_LATEST)
