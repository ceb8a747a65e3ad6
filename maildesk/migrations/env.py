"""Alembic environment: runs on the engine maildesk hands over."""

from alembic import context
from sqlmodel import SQLModel

import maildesk.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
engine = context.config.attributes.get("engine")
if engine is None:  # plain `alembic` invocations by developers
    from maildesk.config import default_config_path, load_settings
    from maildesk.db import make_engine

    engine = make_engine(load_settings(default_config_path()).database_url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
