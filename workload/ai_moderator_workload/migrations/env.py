"""Alembic environment: always runs on the connection `migrate()` hands over,
which holds the cluster-wide migration lock."""

from alembic import context

from ai_moderator_workload.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
