"""Migrating a blank database with Alembic gives exactly the schema the SQLModel tables describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import get_engine
from storage.migrate import current_revision, head_revision


def test_blank_database_migrates_to_the_models_schema(db_url: str) -> None:
    with get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert current_revision() == head_revision()


def test_every_model_table_exists_with_its_unique_keys(db_url: str) -> None:
    inspector = inspect(get_engine())
    assert set(SQLModel.metadata.tables) <= set(inspector.get_table_names())
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("mention")}
    assert ("platform", "external_id") in uniques
