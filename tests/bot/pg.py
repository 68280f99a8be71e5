"""A throwaway schema in the machine's PostgreSQL (127.0.0.1:5432, database `test`), or a skip saying why."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

BASE = os.environ.get("ML_INTERN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A DATABASE_URL whose tables live in a fresh schema, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(BASE, autocommit=True, connect_timeout=3)
    except psycopg.Error as e:
        pytest.skip(f"no PostgreSQL reachable at {BASE} ({str(e).strip().splitlines()[0][:80]})")
    schema = f"mlintern_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{BASE}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
