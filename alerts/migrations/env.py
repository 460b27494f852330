"""Alembic environment: uses the engine handed over by alerts.store.migrate."""

from alembic import context

import alerts.curation.models  # noqa: F401  (registers the alert tables)
import alerts.delivery.models  # noqa: F401  (registers the outbox tables)
import alerts.maturity.models  # noqa: F401  (registers the maturity-scan results)
import alerts.referrals.models  # noqa: F401  (registers the referral directory)
import alerts.staff.models  # noqa: F401  (registers the staff and audit tables)
import subscribers.models  # noqa: F401  (registers the subscriber tables)
from alerts.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
