"""Tenant policies and blocklists managed by the API: the tables, a key's
policy, the policy and extra blocklists an async item is decided with, and
the one-row revision every process polls to pick changes up. New columns are
nullable, so existing keys and content keep the stack's policy.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenant_policy",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(1000)),
        sa.Column("thresholds", JSON, nullable=False),
        sa.Column("default_threshold", sa.Float()),
        sa.Column("allowlist", JSON, nullable=False),
        sa.Column("blocklists", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "blocklist",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(1000)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "blocklist_item",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("blocklist", sa.String(64), sa.ForeignKey("blocklist.name", ondelete="CASCADE"), nullable=False),
        sa.Column("term", sa.String(200), nullable=False),
        sa.Column("term_key", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("blocklist", "term_key", name="uq_blocklist_item_term"),
    )
    policy_revision = op.create_table(
        "policy_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(policy_revision, [{"id": 1, "revision": 0}])
    with op.batch_alter_table("api_key") as api_key:
        api_key.add_column(sa.Column("policy", sa.String(64)))
        api_key.create_foreign_key("fk_api_key_policy", "tenant_policy", ["policy"], ["name"], ondelete="RESTRICT")
    with op.batch_alter_table("content") as content:
        content.add_column(sa.Column("policy", sa.String(64)))
        content.add_column(sa.Column("blocklists", JSON))


def downgrade() -> None:
    with op.batch_alter_table("content") as content:
        content.drop_column("blocklists")
        content.drop_column("policy")
    with op.batch_alter_table("api_key") as api_key:
        api_key.drop_constraint("fk_api_key_policy", type_="foreignkey")
        api_key.drop_column("policy")
    for table in ("policy_revision", "blocklist_item", "blocklist", "tenant_policy"):
        op.drop_table(table)
