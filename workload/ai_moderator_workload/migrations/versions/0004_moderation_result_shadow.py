"""The shadow policy's decision beside the live one (NULL: no shadow policy), and
an index on moderation_result.created_at for the shadow summary's time window.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: on PostgreSQL a catalogue change, no table rewrite.
    op.add_column("moderation_result", sa.Column("shadow", sa.JSON().with_variant(JSONB(), "postgresql")))
    op.create_index("idx_moderation_result_created_at", "moderation_result", ["created_at"])


def downgrade() -> None:
    op.drop_index("idx_moderation_result_created_at", "moderation_result")
    op.drop_column("moderation_result", "shadow")
