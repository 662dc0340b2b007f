"""Feedback on decisions (several per item) and human reviews (one per item,
beside the model's decision, which stays as it was).

The review queue walks content by created_at (idx_content_created_at, from
0001) and checks each item with the primary key of review and
idx_feedback_content_id; its score band depends on the live policy and
REVIEW_BAND, so no index can hold it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("content_id", sa.Uuid(), sa.ForeignKey("content.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("note", sa.String(2000)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("idx_feedback_content_id", "feedback", ["content_id"])
    op.create_index("idx_feedback_created_at", "feedback", ["created_at"])
    op.create_table(
        "review",
        sa.Column("content_id", sa.Uuid(), sa.ForeignKey("content.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("note", sa.String(2000)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("idx_review_created_at", "review", ["created_at"])


def downgrade() -> None:
    op.drop_table("review")
    op.drop_table("feedback")
