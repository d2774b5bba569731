"""Tables the kit adds to every slice's database, whatever the slice: what replicas of one
slice share through that database (leases, registry versions, improvement feedback).

They have their own Alembic history (``services/kit/migrations/versions``, recorded in
``kit_alembic_version``), applied after the slice's own by ``SliceDatabase.migrate``, so a
slice's ``alembic_version`` stays its own. Names start with ``kit_`` to keep clear of the
slices' tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text

KIT_METADATA = MetaData()

leases = Table(
    "kit_leases",
    KIT_METADATA,
    Column("name", String(128), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Float, nullable=False, doc="Unix time (seconds)"),
)

registry_versions = Table(
    "kit_registry_versions",
    KIT_METADATA,
    Column("name", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

feedback = Table(
    "kit_feedback",
    KIT_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False),
    Column("body", Text, nullable=False, doc="ImprovementFeedback as JSON"),
)
