"""Content that can never be moderated ends: status "failed" with a reason.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("content", sa.Column("failure_reason", sa.String(512)))


def downgrade() -> None:
    op.drop_column("content", "failure_reason")
