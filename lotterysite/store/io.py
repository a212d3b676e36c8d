"""Reading and writing store files: cast to the declared schema, write atomically, read back with clear errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import LotterysiteError
from ..fileio import atomic_write
from .schema import SCHEMA_VERSION

MANIFEST = "manifest.json"


class StoreError(LotterysiteError, ValueError):
    """A store file is missing, corrupt or of another schema; the message names the file and the fix."""


def to_table(columns: Mapping[str, Any], schema: pa.Schema, *, where: str = "") -> pa.Table:
    """Build a table of exactly `schema` from column arrays (numpy, lists, pyarrow), casting each column.

    Never infers a schema: a missing or extra column, or a value that does not cast, is an error naming it.
    """
    names = set(schema.names)
    extra = set(columns) - names
    missing = names - set(columns)
    if extra or missing:
        raise StoreError(f"{where}: columns do not match the schema (missing {sorted(missing)}, extra {sorted(extra)})")
    arrays = []
    for field in schema:
        value = columns[field.name]
        try:
            if pa.types.is_dictionary(field.type):
                arr = pa.array(value, type=field.type.value_type).dictionary_encode()
                arr = arr.cast(field.type)
            else:
                arr = pa.array(value, type=field.type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise StoreError(f"{where}: column {field.name!r} does not cast to {field.type} ({e})") from None
        arrays.append(arr)
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise StoreError(f"{where}: columns of different lengths {sorted(lengths)}")
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table(path: str | os.PathLike, table: pa.Table, *, metadata: Mapping[str, Any] | None = None) -> int:
    """Write `table` as an Arrow IPC file atomically, provenance in the schema metadata; returns the row count."""
    path = Path(path)
    meta = {"lotterysite.schema_version": SCHEMA_VERSION}
    for k, v in (metadata or {}).items():
        meta[f"lotterysite.{k}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    table = table.replace_schema_metadata(meta)

    def write(tmp):
        with pa.OSFile(tmp, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    atomic_write(path, write)
    return table.num_rows


def read_table(path: str | os.PathLike, schema: pa.Schema | None = None) -> pa.Table:
    """Read a store file; a truncated, corrupt or foreign file is a StoreError naming it and the fix."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} not found; run `lotterysite precompute RECIPE` to create the store")
    try:
        with pa.memory_map(str(path), "r") as source:
            table = ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise StoreError(
            f"{path}: corrupt or truncated Arrow file ({str(e).splitlines()[0]}); delete it and rerun "
            "`lotterysite precompute RECIPE`, which recomputes only what is missing"
        ) from None
    if schema is not None:
        got = table.schema.remove_metadata()
        if not got.equals(schema):
            diff = [f.name for f in schema if f.name not in got.names or got.field(f.name).type != f.type]
            raise StoreError(
                f"{path}: schema differs from store schema {SCHEMA_VERSION} in {diff or got.names}; "
                "rebuild the store with this version (`lotterysite precompute --force RECIPE`)"
            )
    return table


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(root: str | os.PathLike, manifest: dict) -> None:
    root = Path(root)
    body = json.dumps({"schema_version": SCHEMA_VERSION, **manifest}, indent=2, sort_keys=True, default=str)
    atomic_write(root / MANIFEST, lambda tmp: Path(tmp).write_text(body + "\n", encoding="utf-8"))


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise StoreError(f"{path} not found: {root} is not a lotterysite store; run `lotterysite precompute RECIPE`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not valid JSON ({e}); rerun `lotterysite precompute RECIPE`") from None
    if manifest.get("schema_version", "").split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise StoreError(
            f"{path}: field 'schema_version' is {manifest.get('schema_version')!r}, this lotterysite reads "
            f"{SCHEMA_VERSION}; rebuild the store with `lotterysite precompute --force RECIPE`"
        )
    return manifest
