"""A key's own daily storage quota in bytes (NULL: the DAILY_STORAGE_QUOTA_BYTES default).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_key", sa.Column("daily_storage_quota_bytes", sa.BigInteger()))


def downgrade() -> None:
    op.drop_column("api_key", "daily_storage_quota_bytes")
