"""Alembic environment shared by every slice: the caller passes the connection and metadata.

Each slice keeps its own history in ``services/<slice>/migrations/versions``, the kit its
own in ``services/kit/migrations/versions`` (version table ``kit_alembic_version``); see
``services.kit.database.SliceDatabase.migrate``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    version_table=config.attributes.get("version_table", "alembic_version"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
