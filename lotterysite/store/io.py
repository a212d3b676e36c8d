"""Reading and writing store files: cast to the declared schema, write atomically, read back with clear errors."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import LotterysiteError, escape_controls  # noqa: F401 - re-exported
from ..fileio import file_digest, write_bytes
from .schema import SCHEMA_VERSION

MANIFEST = "manifest.json"
FORMAT = "lotterysite store"  # manifest.json "format": the signature by which a folder is known as a store
VERSION = re.compile(r"^[0-9]+\.[0-9]+$")
MAX_MANIFEST_BYTES = 256 << 20  # far above any study's manifest; a larger "manifest" is not one
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
    return _check_schema(path, table, schema)


def table_from_bytes(data: bytes, where: str | os.PathLike, schema: pa.Schema | None = None) -> pa.Table:
    """An Arrow IPC file already read (and verified) as bytes, checked against `schema` like `read_table`."""
    try:
        table = ipc.open_file(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise StoreError(f"{where}: corrupt or truncated Arrow file ({str(e).splitlines()[0]}); {RERUN}") from None
    return _check_schema(Path(where), table, schema)


def _check_schema(path: Path, table: pa.Table, schema: pa.Schema | None) -> pa.Table:
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
    reader can tell a whole store from one whose files come from different runs or were altered. The manifest
    carries lotterysite's signature (`format` and `schema_version`): the only mark by which a folder is taken for
    a store, and so may be replaced as a whole."""
    root = Path(root)
    files = {}
    for name, info in manifest.get("files", {}).items():
        path = root / name
        files[name] = {**info, "bytes": path.stat().st_size, "sha256": file_digest(path)}
    body = json.dumps(
        {**manifest, "format": FORMAT, "schema_version": SCHEMA_VERSION, "files": files},
        indent=2,
        sort_keys=True,
        default=str,
    )
    write_bytes(root / MANIFEST, (body + "\n").encode("utf-8"))


# -- reading a store: one handle on the folder, no link followed, every file read once ----------------------------
def _open_folder(root: Path) -> int:
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        aside = [root.parent / n for n in _names(root.parent) if n.startswith(f".{root.name}.previous-")]
        if aside:
            raise StoreError(f"{root} not found: a run was interrupted while switching in a new store and left the "
                             f"previous one at {sorted(aside)[-1]}; rerun `lotterysite precompute RECIPE` (it restores "
                             "it first) or rename it back") from None  # fmt: skip
        raise StoreError(f"{root} not found; run `lotterysite precompute RECIPE` to create the store") from None
    except NotADirectoryError:
        raise StoreError(f"{root}: not a folder; give the store folder that `lotterysite precompute` wrote") from None
    except OSError as e:
        raise StoreError(f"{root}: cannot open ({e.strerror}); check its permissions") from None


def _read_in(folder_fd: int, rel: str, where: Path, *, limit: int | None = None) -> bytes:
    """The bytes of the regular file `rel` below the open folder `folder_fd`, following no symbolic link on the
    way (a store never holds links: one could point a public site at a private file)."""
    parts = PurePosixPath(rel).parts
    opened: list[int] = []
    fd = -1
    try:
        parent = folder_fd
        for part in parts[:-1]:
            parent = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            opened.append(parent)
        # O_NONBLOCK: a FIFO planted in the store must not hang the reader; it is refused below.
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{where}: not a regular file inside the store (a folder or a device); {RERUN}")
        if limit is not None and st.st_size > limit:
            raise StoreError(f"{where}: {st.st_size} bytes, more than a store's {limit} allows; {RERUN}")
        chunks = []
        while chunk := os.read(fd, 1 << 22):
            chunks.append(chunk)
        return b"".join(chunks)
    except FileNotFoundError:
        raise StoreError(f"{where} not found; {RERUN}") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise StoreError(f"{where}: not a regular file inside the store (a link, or below one); a store never "
                             f"holds links, so it is refused; {RERUN}") from None  # fmt: skip
        raise StoreError(f"{where}: cannot read ({e.strerror}); check its permissions") from None
    finally:
        if fd >= 0:
            os.close(fd)
        for d in opened:
            os.close(d)


def _parse_manifest(data: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not valid JSON ({e}); {RERUN}") from None
    if not isinstance(manifest, dict):
        raise StoreError(f"{path}: holds a JSON {type(manifest).__name__}, not an object; {RERUN}")
    return manifest


def signature_problem(root: str | os.PathLike) -> str | None:
    """Why `root` is not a store lotterysite wrote, or None when it is: its manifest.json, a regular file, holds
    lotterysite's format marker and a schema version. Any other manifest.json (an app's, a data set's) is not a
    store's, whatever else the folder holds."""
    root = Path(root)
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        return f"cannot be opened ({e.strerror})"
    try:
        try:
            os.stat(MANIFEST, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except OSError as e:
            return f"its {MANIFEST} cannot be read ({e.strerror})"
        try:
            manifest = _parse_manifest(_read_in(folder, MANIFEST, root / MANIFEST, limit=MAX_MANIFEST_BYTES),
                                       root / MANIFEST)  # fmt: skip
        except StoreError:
            return f"its {MANIFEST} is not one lotterysite wrote (not a regular file of a JSON object)"
    finally:
        os.close(folder)
    if manifest.get("format") != FORMAT:
        return f'its {MANIFEST} lacks lotterysite\'s signature ("format": "{FORMAT}")'
    version = manifest.get("schema_version")
    if not isinstance(version, str) or not VERSION.match(version):
        return f"its {MANIFEST} has no schema version (field 'schema_version' is {version!r})"
    if not isinstance(manifest.get("files"), dict):
        return f"its {MANIFEST} lists no files"
    return None


def unlisted_entries(root: str | os.PathLike) -> list[str]:
    """What a signed store folder holds that its manifest does not list (a link, a file, another store): a
    store replaced as a whole would take it along."""
    root = Path(root)
    try:
        listed = set(json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    listed.add(MANIFEST)
    folders = {p for name in listed for p in map(str, PurePosixPath(name).parents) if p != "."}
    out = []
    for dirpath, dirs, names in os.walk(root):  # never follows links: a link is an entry like any other
        base = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        for d in list(dirs):
            rel = str(base / d)
            if rel not in folders or os.path.islink(os.path.join(dirpath, d)):
                out.append(rel + "/")
                dirs.remove(d)
        for n in names:
            rel = str(base / n)
            if rel not in listed or os.path.islink(os.path.join(dirpath, n)):
                out.append(rel)
    return sorted(out)


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of the store at `root`, its signature and the fields the readers use checked."""
    root = Path(root)
    folder = _open_folder(root)
    try:
        return _read_manifest(folder, root)
    finally:
        os.close(folder)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _read_manifest(folder: int, root: Path) -> dict:
    path = root / MANIFEST
    try:
        os.stat(MANIFEST, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        raise StoreError(
            f"{path} not found: {root} is not a lotterysite store; run `lotterysite precompute RECIPE`"
        ) from None
    except OSError:
        pass  # reported by the read
    manifest = _parse_manifest(_read_in(folder, MANIFEST, path, limit=MAX_MANIFEST_BYTES), path)
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{path}: field 'format' is {manifest.get('format')!r}, not {FORMAT!r}: not a store this "
                         "lotterysite wrote (or one from before stores were signed); move the folder away and rerun "
                         "`lotterysite precompute RECIPE`, which resumes from its finished work")  # fmt: skip
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
    _check_fields(manifest, path)
    return manifest


def _check_fields(m: dict, path: Path) -> None:
    """The fields `info` and the site read, each of the type they expect: a malformed field is one line."""

    def bad(field: str, value, want: str):
        raise StoreError(f"{path}: field {field!r} is {value!r}, not {want}; {RERUN}")

    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def strings(v) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    d = m["dataset"]
    if not strings(d.get("classes")) or not d["classes"]:
        bad("dataset.classes", d.get("classes"), "a non-empty list of class names (strings)")
    if len(set(d["classes"])) != len(d["classes"]):
        bad("dataset.classes", d["classes"], "a list of distinct class names")
    for key in ("n_eval", "n_shipped"):
        if not count(d.get(key)):
            bad(f"dataset.{key}", d.get(key), "a whole number >= 0")
    if not isinstance(d.get("name"), str):
        bad("dataset.name", d.get("name"), "a string")
    k = d.get("confused_classes")
    if k is not None and (not count(k) or k < 1):
        bad("dataset.confused_classes", k, "null or a whole number >= 1")
    if d.get("shipping") is not None and not isinstance(d["shipping"], dict):
        bad("dataset.shipping", d["shipping"], "null or a JSON object")
    if not strings(m["corruptions"]):
        bad("corruptions", m["corruptions"], "a list of corruption names (strings)")
    for key in ("severities", "shipped_severities"):
        v = m.get(key, [])
        if not isinstance(v, list) or not all(count(x) for x in v):
            bad(key, v, "a list of whole numbers")
    for key in ("architectures", "methods"):
        if not strings(m.get(key, [])):
            bad(key, m.get(key), "a list of strings")
    for i, model in enumerate(m["models"]):
        if not isinstance(model, dict) or not all(
            isinstance(model.get(f), str) for f in ("model_id", "arch", "method", "model_key")
        ):
            bad(f"models[{i}]", model, "an object with the strings model_id, arch, method and model_key")
    if not isinstance(m["recipe"].get("name"), str):
        bad("recipe.name", m["recipe"].get("name"), "a string")
    if m.get("gallery") is not None and not isinstance(m["gallery"], str):
        bad("gallery", m["gallery"], "null or a file name")
    if m.get("bootstrap") is not None and not isinstance(m["bootstrap"], dict):
        bad("bootstrap", m["bootstrap"], "a JSON object")


def read_store(root: str | os.PathLike, *, keep: bool = True) -> tuple[dict, dict[str, bytes]]:
    """The manifest and every file it lists, each read once through one handle on the folder (no link followed),
    checked against its recorded size, SHA-256 and run. A reader that uses these bytes never meets a file swapped
    or republished after the check. With `keep=False` the bytes are checked and dropped (returns {})."""
    root = Path(root)
    folder = _open_folder(root)
    try:
        manifest = _read_manifest(folder, root)
        return manifest, _verified_files(folder, root, manifest, keep=keep)
    finally:
        os.close(folder)


def verify_store(root: str | os.PathLike, manifest: dict | None = None) -> dict:
    """Check every file the manifest lists: a regular file inside the store (no symbolic links out), of the
    recorded size and SHA-256, written by the manifest's run. Returns the manifest; a StoreError names the file."""
    root = Path(root)
    if manifest is None:
        return read_store(root, keep=False)[0]
    folder = _open_folder(root)
    try:
        _verified_files(folder, root, manifest, keep=False)
    finally:
        os.close(folder)
    return manifest


def _verified_files(folder: int, root: Path, manifest: dict, *, keep: bool) -> dict[str, bytes]:
    where = root / MANIFEST
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise StoreError(f"{where}: field 'run_id' is missing: an older lotterysite wrote this store without "
                         f"digests, so it cannot be checked; {RERUN}")  # fmt: skip
    out = {}
    for name, info in manifest["files"].items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or name != rel.as_posix():
            raise StoreError(f"{where}: field 'files' lists {name!r}, which is not a path inside the store; {RERUN}")
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("bytes"), int)
            or not isinstance(info.get("sha256"), str)
        ):
            raise StoreError(f"{where}: field 'files.{name}' lacks its size or SHA-256; {RERUN}")
        path = root / name
        data = _read_in(folder, name, path)
        if len(data) != info["bytes"]:
            raise StoreError(
                f"{path}: {len(data)} bytes, the manifest records {info['bytes']}: the file was altered or "
                f"comes from another run; {RERUN}"
            )
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise StoreError(f"{path}: content differs from the SHA-256 the manifest records: the file was altered or "
                             f"comes from another run; {RERUN}")  # fmt: skip
        if name.endswith(".arrow"):
            try:
                meta = ipc.open_file(pa.py_buffer(data)).schema.metadata or {}
            except (pa.ArrowInvalid, OSError) as e:
                first = str(e).splitlines()[0]
                raise StoreError(f"{path}: corrupt or truncated Arrow file ({first}); {RERUN}") from None
            got = meta.get(b"lotterysite.run_id", b"").decode("utf-8", "replace")
            if got != run_id:
                raise StoreError(f"{path}: written by run {got or 'unknown'!r}, the manifest by run {run_id!r}: a "
                                 f"store mixed from two runs; {RERUN}")  # fmt: skip
        if keep:
            out[name] = data
    return out


def check_classes(root: str | os.PathLike, manifest: dict, samples: pa.Table) -> None:
    """The manifest's class names against samples.arrow's own (label, class_name) pairs: two names swapped in the
    manifest would mislabel every view."""
    classes = manifest["dataset"]["classes"]
    pairs = set(zip(samples["label"].to_pylist(), samples["class_name"].cast(pa.string()).to_pylist(), strict=True))
    for label, name in sorted(pairs, key=str):
        if label is None or not 0 <= label < len(classes) or classes[label] != name:
            have = classes[label] if label is not None and 0 <= label < len(classes) else "no class"
            raise StoreError(f"{Path(root) / MANIFEST}: field 'dataset.classes' names label {label} {have!r}, "
                             f"samples.arrow {name!r}: the manifest and the data disagree; {RERUN}")  # fmt: skip
