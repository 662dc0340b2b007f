"""Callbacks: where and whether an item's decision was delivered, and each
key's default callback URL and signing secret. All columns are nullable (or
have a server default), so existing rows need no rewrite: content decided
before this revision simply has no callback. Existing keys get no secret;
`apikey rotate-callback-secret` gives them one.

idx_content_delivery_due is partial (pending deliveries only), so the
sweeper's scan for due deliveries stays small however much content there is.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("content") as content:
        content.add_column(sa.Column("callback_url", sa.String(2048)))
        content.add_column(sa.Column("delivery_status", sa.String(16)))
        content.add_column(sa.Column("delivery_attempts", sa.Integer(), nullable=False, server_default="0"))
        content.add_column(sa.Column("delivery_id", sa.Uuid()))
        content.add_column(sa.Column("next_delivery_at", TS))
        content.add_column(sa.Column("delivered_at", TS))
        content.add_column(sa.Column("delivery_error", sa.String(512)))
    op.create_index("idx_content_delivery_due", "content", ["next_delivery_at"],
                    postgresql_where=sa.text("delivery_status = 'pending'"))
    with op.batch_alter_table("api_key") as api_key:
        api_key.add_column(sa.Column("callback_url", sa.String(2048)))
        api_key.add_column(sa.Column("callback_secret", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("api_key") as api_key:
        api_key.drop_column("callback_secret")
        api_key.drop_column("callback_url")
    op.drop_index("idx_content_delivery_due", table_name="content")
    with op.batch_alter_table("content") as content:
        for column in ("delivery_error", "delivered_at", "next_delivery_at", "delivery_id", "delivery_attempts",
                       "delivery_status", "callback_url"):
            content.drop_column(column)
