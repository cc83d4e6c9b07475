"""Payments always have their intent; fee below amount; currency codes checked.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENCY_CODE = "currency ~ '^[a-z]{3}$'"


def upgrade() -> None:
    # Every row the saga ever wrote has its intent: the upsert writes both at once.
    op.alter_column(
        "payments", "stripe_payment_intent_id", existing_type=sa.String(255), nullable=False
    )
    op.create_check_constraint(
        op.f("ck_payments_fee_below_amount"), "payments", "fee_amount < amount"
    )
    op.create_check_constraint(op.f("ck_payments_currency_code"), "payments", CURRENCY_CODE)
    op.create_check_constraint(op.f("ck_artworks_currency_code"), "artworks", CURRENCY_CODE)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_artworks_currency_code"), "artworks", type_="check")
    op.drop_constraint(op.f("ck_payments_currency_code"), "payments", type_="check")
    op.drop_constraint(op.f("ck_payments_fee_below_amount"), "payments", type_="check")
    op.alter_column(
        "payments", "stripe_payment_intent_id", existing_type=sa.String(255), nullable=True
    )
