"""`alerts run`'s scheduler carries every periodic job, newsletters at 07:00 Brussels time."""

from types import SimpleNamespace

from alerts.service import start_scheduler


def test_scheduler_jobs(database, settings):
    poller = SimpleNamespace(database=database, settings=settings, poll_due=lambda wait: None)
    scheduler = start_scheduler(poller)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert {
            "poll-due",
            "score-sweep",
            "purge-unconfirmed",
            "purge-staff-sessions",
            "send-scheduled",
            "newsletter-daily",
            "newsletter-weekly",
            "expire-firms",
        } <= set(jobs)
        weekly = jobs["newsletter-weekly"].trigger
        assert str(weekly.timezone) == "Europe/Brussels" and "mon" in str(weekly)
        next_run = jobs["newsletter-daily"].next_run_time
        assert next_run.hour == 7 and next_run.utcoffset().total_seconds() in (3600, 7200)
    finally:
        scheduler.shutdown(wait=False)
