"""webhook events: dispatched_at, the outbox's "delivery workflows started" mark

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_events_dispatched_at'), ['dispatched_at'], unique=False)
    # Events written before deliveries existed had no subscriber to reach: they are not a backlog to send.
    op.execute("UPDATE webhook_events SET dispatched_at = created_at")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_dispatched_at'))
        batch_op.drop_column('dispatched_at')
