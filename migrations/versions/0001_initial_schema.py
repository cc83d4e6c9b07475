"""Initial schema: users, artworks, bids, payments.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 16:22:36
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("subject", name=op.f("uq_users_subject")),
    )
    op.create_table(
        "artworks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starting_price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="usd", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'pending_payment', 'sold')", name=op.f("ck_artworks_status_valid")
        ),
        sa.CheckConstraint("starting_price > 0", name=op.f("ck_artworks_starting_price_positive")),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["users.id"], name=op.f("fk_artworks_seller_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artworks")),
    )
    op.create_index(op.f("ix_artworks_seller_id"), "artworks", ["seller_id"], unique=False)
    op.create_index(op.f("ix_artworks_status"), "artworks", ["status"], unique=False)
    op.create_table(
        "bids",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("artwork_id", sa.BigInteger(), nullable=False),
        sa.Column("bidder_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'won', 'paid', 'unpaid')", name=op.f("ck_bids_status_valid")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bids_amount_positive")),
        sa.ForeignKeyConstraint(
            ["artwork_id"], ["artworks.id"], name=op.f("fk_bids_artwork_id_artworks")
        ),
        sa.ForeignKeyConstraint(["bidder_id"], ["users.id"], name=op.f("fk_bids_bidder_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bids")),
    )
    op.create_index("ix_bids_artwork_id_amount", "bids", ["artwork_id", "amount"], unique=False)
    op.create_index(op.f("ix_bids_bidder_id"), "bids", ["bidder_id"], unique=False)
    op.create_index(
        "uq_bids_one_winner_per_artwork",
        "bids",
        ["artwork_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('won', 'paid')"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bid_id", sa.BigInteger(), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_charge_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("fee_amount", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="usd", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "payment_metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'failed', 'succeeded', 'expired', 'canceled')",
            name=op.f("ck_payments_status_valid"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("fee_amount >= 0", name=op.f("ck_payments_fee_amount_not_negative")),
        sa.ForeignKeyConstraint(["bid_id"], ["bids.id"], name=op.f("fk_payments_bid_id_bids")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("bid_id", name=op.f("uq_payments_bid_id")),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name=op.f("uq_payments_stripe_payment_intent_id")
        ),
    )
    op.create_index("ix_payments_created_at", "payments", ["created_at"], unique=False)
    op.create_index(op.f("ix_payments_status"), "payments", ["status"], unique=False)
    op.create_index(op.f("ix_payments_workflow_id"), "payments", ["workflow_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payments_workflow_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_status"), table_name="payments")
    op.drop_index("ix_payments_created_at", table_name="payments")
    op.drop_table("payments")
    op.drop_index(
        "uq_bids_one_winner_per_artwork",
        table_name="bids",
        postgresql_where=sa.text("status IN ('won', 'paid')"),
    )
    op.drop_index(op.f("ix_bids_bidder_id"), table_name="bids")
    op.drop_index("ix_bids_artwork_id_amount", table_name="bids")
    op.drop_table("bids")
    op.drop_index(op.f("ix_artworks_status"), table_name="artworks")
    op.drop_index(op.f("ix_artworks_seller_id"), table_name="artworks")
    op.drop_table("artworks")
    op.drop_table("users")
