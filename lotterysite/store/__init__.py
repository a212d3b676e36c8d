"""The Arrow store that precompute writes and the site reads (schemas in `schema`, file access in `io`)."""

from .io import StoreError, read_manifest, read_table, to_table, verify_store, write_manifest, write_table
from .schema import SCHEMA_VERSION, TABLES, geometry_schema

__all__ = [
    "SCHEMA_VERSION",
    "StoreError",
    "TABLES",
    "geometry_schema",
    "read_manifest",
    "read_table",
    "to_table",
    "verify_store",
    "write_manifest",
    "write_table",
]
