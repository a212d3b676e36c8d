"""Reading and writing store files: cast to the declared schema, write atomically, read back with clear errors."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import LotterysiteError
from ..fileio import file_digest, write_bytes
from .schema import SCHEMA_VERSION

MANIFEST = "manifest.json"
RERUN = "rerun `lotterysite precompute RECIPE`, which rewrites the whole store"


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

    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    write_bytes(path, sink.getvalue().to_pybytes())
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


def write_manifest(root: str | os.PathLike, manifest: dict) -> None:
    """Write manifest.json last: every file listed in manifest["files"] gets its size and SHA-256 recorded, so a
    reader can tell a whole store from one whose files come from different runs or were altered."""
    root = Path(root)
    files = {}
    for name, info in manifest.get("files", {}).items():
        path = root / name
        files[name] = {**info, "bytes": path.stat().st_size, "sha256": file_digest(path)}
    body = json.dumps(
        {"schema_version": SCHEMA_VERSION, **manifest, "files": files}, indent=2, sort_keys=True, default=str
    )
    write_bytes(root / MANIFEST, (body + "\n").encode("utf-8"))


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    aside = sorted(Path(root).parent.glob(f".{Path(root).name}.previous-*"))
    if not path.exists() and aside:
        raise StoreError(f"{root} not found: a run was interrupted while switching in a new store and left the "
                         f"previous one at {aside[-1]}; rerun `lotterysite precompute RECIPE` (it restores it first) "
                         "or rename it back")  # fmt: skip
    if not path.exists():
        raise StoreError(f"{path} not found: {root} is not a lotterysite store; run `lotterysite precompute RECIPE`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not valid JSON ({e}); {RERUN}") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    if not isinstance(manifest, dict):
        raise StoreError(f"{path}: holds a JSON {type(manifest).__name__}, not an object; {RERUN}")
    version = manifest.get("schema_version")
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise StoreError(
            f"{path}: field 'schema_version' is {version!r}, this lotterysite reads "
            f"{SCHEMA_VERSION}; rebuild the store with `lotterysite precompute --force RECIPE`"
        )
    for key, kind in (("files", dict), ("models", list), ("corruptions", list), ("dataset", dict), ("recipe", dict)):
        if not isinstance(manifest.get(key), kind):
            raise StoreError(
                f"{path}: field {key!r} is missing or not a JSON {'object' if kind is dict else 'array'}; {RERUN}"
            )
    return manifest


def verify_store(root: str | os.PathLike, manifest: dict | None = None) -> dict:
    """Check every file the manifest lists: a regular file inside the store (no symbolic links out), of the
    recorded size and SHA-256, written by the manifest's run. Returns the manifest; a StoreError names the file."""
    root = Path(root)
    manifest = read_manifest(root) if manifest is None else manifest
    where = root / MANIFEST
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise StoreError(f"{where}: field 'run_id' is missing: an older lotterysite wrote this store without "
                         f"digests, so it cannot be checked; {RERUN}")  # fmt: skip
    for name, info in manifest["files"].items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise StoreError(f"{where}: field 'files' lists {name!r}, which is not a path inside the store; {RERUN}")
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("bytes"), int)
            or not isinstance(info.get("sha256"), str)
        ):
            raise StoreError(f"{where}: field 'files.{name}' lacks its size or SHA-256; {RERUN}")
        path = root / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise StoreError(f"{path} not found (listed in the manifest); {RERUN}") from None
        if not stat.S_ISREG(st.st_mode) or path.resolve() != root.resolve() / rel:
            raise StoreError(f"{path}: not a regular file inside the store (a link or a folder); a store never "
                             f"holds links, so it is refused; {RERUN}")  # fmt: skip
        if st.st_size != info["bytes"]:
            raise StoreError(
                f"{path}: {st.st_size} bytes, the manifest records {info['bytes']}: the file was altered or "
                f"comes from another run; {RERUN}"
            )
        if file_digest(path) != info["sha256"]:
            raise StoreError(f"{path}: content differs from the SHA-256 the manifest records: the file was altered or "
                             f"comes from another run; {RERUN}")  # fmt: skip
        if name.endswith(".arrow"):
            meta = read_schema(path).metadata or {}
            got = meta.get(b"lotterysite.run_id", b"").decode()
            if got != run_id:
                raise StoreError(f"{path}: written by run {got or 'unknown'!r}, the manifest by run {run_id!r}: a "
                                 f"store mixed from two runs; {RERUN}")  # fmt: skip
    return manifest


def read_schema(path: Path) -> pa.Schema:
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_file(source).schema
    except (pa.ArrowInvalid, OSError) as e:
        raise StoreError(f"{path}: corrupt or truncated Arrow file ({str(e).splitlines()[0]}); {RERUN}") from None
