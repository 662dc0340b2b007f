"""Initial schema: content, moderation_result, api_key, audit_event, with the
indexes the queries need (external_id, content_id, created_at).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Result ids are made by the database on PostgreSQL (bulk COPY omits
    # them); SQLite gets them from the model's Python-side default.
    uuid_default = sa.text("gen_random_uuid()") if op.get_bind().dialect.name == "postgresql" else None
    op.create_table(
        "content",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("queued_at", TS),
        sa.UniqueConstraint("tenant", "external_id", name="uq_content_tenant_external_id"),
    )
    op.create_index("idx_content_external_id", "content", ["external_id"])
    op.create_index("idx_content_created_at", "content", ["created_at"])
    op.create_index("idx_content_pending", "content", ["status", "queued_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "moderation_result",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=uuid_default),
        sa.Column("content_id", sa.Uuid(), sa.ForeignKey("content.id", ondelete="CASCADE"), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("spans", JSON, nullable=False),
        sa.Column("engine_version", sa.String(128), nullable=False),
        sa.Column("policy_version", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("idx_moderation_result_content_id", "moderation_result", ["content_id"], unique=True)
    op.create_table(
        "api_key",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("details", JSON),
    )
    op.create_index("idx_audit_event_created_at", "audit_event", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("api_key")
    op.drop_table("moderation_result")
    op.drop_table("content")
