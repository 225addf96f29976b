"""Backup and restore of one factory: its metadata rows and its objects (docs/operations.md).

A backup is a folder, or the same folder as a ``.tar.gz``::

    manifest.json               format, version, schema revision, counts and SHA-256 of every part
    metadata/factories.jsonl    the factory's own row
    metadata/<table>.jsonl      every row of that factory in each tenant table, one JSON object a line
    objects/<key>               every object under the factory's prefix in the object store

The tenant tables are found in the SQLAlchemy metadata, not listed by hand: every table with a
``factory_id`` column that is not platform-only. Users belong to one factory (``users.factory_id``),
so they and their password hashes are in their factory's backup; the platform root accounts, the
sign-in sessions and the platform audit log are platform-level and never are. Time-series
telemetry is not in a backup either: ``factoryops export-factory`` writes it as Parquet, and
InfluxDB has its own backup (``influxd backup -portable``).

Rows are read in one transaction (a consistent snapshot), ordered by primary key. A restore
checks the format, every part's SHA-256 and row count, and the schema revision before it
touches anything; then, in ONE transaction, deletes the factory's rows (only with ``--replace``)
and inserts the backup's in foreign-key order; then puts the objects back. Reading and writing
every tenant table of one factory is platform-root work: it goes through the explicit
``unscoped_session`` escape hatch, and every statement names the factory's id itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Date, DateTime, LargeBinary, Numeric, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from factoryops import __version__
from factoryops.core.db import Base, Database, PlatformOnly, utcnow
from factoryops.ports.objectstore.base import FactoryScope, Key, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

FORMAT = "factoryops-factory-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
METADATA_DIR = "metadata"
OBJECTS_DIR = "objects"
FACTORIES = "factories"
INSERT_BATCH = 500
READ_BATCH = 1000
_HASH_CHUNK = 1 << 20
NOT_INCLUDED = [
    "time-series telemetry: use `factoryops export-factory` (Parquet per device) or InfluxDB's own backup "
    "(`influxd backup -portable`); see docs/operations.md",
    "platform root accounts, sign-in sessions and the platform audit log (platform-level, not a factory's)",
]


class BackupError(Exception):
    """A backup or restore cannot be done; the message says what is wrong and what to do."""


# ---------------------------------------------------------------------------- which tables
def _factories_table() -> Table:
    from factoryops.tenancy.models import Factory

    return Factory.__table__  # type: ignore[return-value]


def factory_tables() -> list[Table]:
    """Every table holding rows of one factory (a ``factory_id`` column, not platform-only), in FK order."""
    from factoryops.models import import_all_models

    import_all_models()
    platform = {m.local_table for m in Base.registry.mappers if issubclass(m.class_, PlatformOnly)}
    return [t for t in Base.metadata.sorted_tables if "factory_id" in t.c and t not in platform]


def platform_tables() -> list[Table]:
    """The tables no factory backup holds (platform root, sessions, platform audit)."""
    mine = {t.name for t in factory_tables()} | {FACTORIES}
    return [t for t in Base.metadata.sorted_tables if t.name not in mine]


def schema_head() -> str | None:
    from alembic.script import ScriptDirectory

    from factoryops.core.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _check_schema(db: Database, doing: str) -> str:
    from factoryops.core.migrate import current

    head = schema_head()
    revision = current(db.engine)
    if revision is None:
        raise BackupError(f"cannot {doing}: the database has no FactoryOps schema; run `factoryops migrate` first")
    if revision != head:
        raise BackupError(
            f"cannot {doing}: the database is at schema revision {revision} but this FactoryOps version "
            f"expects {head}; run `factoryops migrate` (or use the FactoryOps version of that revision)"
        )
    return revision


# ---------------------------------------------------------------------------- values as JSON
def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _identity(value: Any) -> Any:
    return value


def _decoder(column: Any) -> Callable[[Any], Any]:
    """How a column's JSON value becomes what the column's type binds (the inverse of :func:`_encode`)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, JSON):
        return _identity
    if isinstance(kind, DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(kind, Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    if isinstance(kind, Numeric) and kind.asdecimal:
        return lambda v: None if v is None else Decimal(v)
    return _identity


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- where parts go
class _Sink:
    """The backup's destination: a folder, or a ``.tar.gz`` written part by part.

    Parts are staged one at a time beside the destination and moved (folder) or appended (tar),
    so the disk holds the backup plus one part, never two copies. The tar is written under a
    temporary name and renamed when complete: a half-written backup never looks like one.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.is_tar = out.name.endswith((".tar.gz", ".tgz"))
        self._tar: tarfile.TarFile | None = None
        self._created = False
        if self.is_tar:
            if out.exists():
                raise BackupError(f"{out} exists already; choose a new file name (backups are never overwritten)")
            out.parent.mkdir(parents=True, exist_ok=True)
            self._partial = out.with_name(out.name + ".partial")
            self._tar = tarfile.open(self._partial, "w:gz")  # noqa: SIM115 - closed by finish() or abort()
            self.staging = Path(tempfile.mkdtemp(prefix=".factoryops-backup-", dir=out.parent))
        else:
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise BackupError(f"{out} exists and is not an empty folder; choose a new folder (or a new .tar.gz)")
            self._created = not out.exists()
            out.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))

    def stage(self, name: str) -> Path:
        return self.staging / name.replace("/", "__")

    def add(self, staged: Path, name: str) -> None:
        if self._tar is not None:
            self._tar.add(staged, arcname=name, recursive=False)
            staged.unlink()
        else:
            target = self.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)

    def finish(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._tar is not None:
            self._tar.close()
            os.replace(self._partial, self.out)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._tar is not None:
            self._tar.close()
            self._partial.unlink(missing_ok=True)
        elif self._created:  # a half-written folder must not look like a backup
            shutil.rmtree(self.out, ignore_errors=True)


# ---------------------------------------------------------------------------- backup
@dataclass
class BackupResult:
    out: Path
    factory: dict[str, str]
    rows: dict[str, int]
    objects: int
    object_bytes: int
    manifest: dict[str, Any] = field(default_factory=dict)


def _snapshot(s: Session, db: Database) -> None:
    """Make every read of this session see one consistent state of the database."""
    if db.engine.dialect.name == "sqlite":
        # pysqlite starts transactions only before writes; BEGIN makes the reads one snapshot (WAL).
        s.connection().exec_driver_sql("BEGIN")
    else:
        s.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def find_factory(s: Session, ref: str) -> dict[str, Any]:
    """The factory row named by its id or its slug (in an unscoped session); BackupError when none."""
    factories = _factories_table()
    row = s.execute(select(factories).where(or_(factories.c.id == ref, factories.c.slug == ref))).mappings().first()
    if row is None:
        raise BackupError(f"no factory with the id or slug {ref!r} in this platform")
    return dict(row)


def _write_jsonl(sink: _Sink, name: str, rows: Iterator[dict[str, Any]]) -> dict[str, Any]:
    staged = sink.stage(name)
    digest = hashlib.sha256()
    count = size = 0
    with staged.open("wb") as fh:
        for row in rows:
            line = (
                json.dumps({k: _encode(v) for k, v in row.items()}, sort_keys=True, ensure_ascii=False) + "\n"
            ).encode()
            fh.write(line)
            digest.update(line)
            count += 1
            size += len(line)
    sink.add(staged, name)
    return {"file": name, "rows": count, "bytes": size, "sha256": digest.hexdigest()}


def _rows(s: Session, table: Table, factory_id: str) -> Iterator[dict[str, Any]]:
    key = table.c.id if table.name == FACTORIES else table.c.factory_id
    stmt = select(table).where(key == factory_id).order_by(*table.primary_key.columns)
    for row in s.execute(stmt.execution_options(yield_per=READ_BATCH)).mappings():
        yield dict(row)


def backup_factory(db: Database, objects: ObjectStore | None, factory_ref: str, out: Path) -> BackupResult:
    """Write the backup of one factory to ``out`` (a new folder, or a ``.tar.gz`` file)."""
    revision = _check_schema(db, "back up")
    tables = factory_tables()
    sink = _Sink(out)
    try:
        parts: list[dict[str, Any]] = []
        # ESCAPE HATCH: one factory's rows of every tenant table; each statement filters on its id.
        with db.unscoped_session() as s:
            _snapshot(s, db)
            factory = find_factory(s, factory_ref)
            factory_id = str(factory["id"])
            for table in [_factories_table(), *tables]:
                part = _write_jsonl(sink, f"{METADATA_DIR}/{table.name}.jsonl", _rows(s, table, factory_id))
                parts.append({"table": table.name, **part})
        listed: list[dict[str, Any]] = []
        total = 0
        if objects is not None:
            scope = FactoryScope(factory_id)
            try:
                infos = objects.list(scope)
                for obj in infos:
                    name = f"{OBJECTS_DIR}/{obj.key}"
                    staged = sink.stage(name)
                    objects.download_to(scope, obj.key, staged)
                    size = staged.stat().st_size
                    listed.append({"key": str(obj.key), "file": name, "size": size, "sha256": _sha256_file(staged)})
                    total += size
                    sink.add(staged, name)
            except ObjectStoreError as exc:
                raise BackupError(f"cannot copy the factory's objects: {exc}") from exc
        info = {"id": factory_id, "slug": str(factory["slug"]), "name": str(factory["name"])}
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": utcnow().isoformat(),
            "factoryops_version": __version__,
            "schema_revision": revision,
            "database": db.engine.dialect.name,
            "factory": info,
            "tables": parts,
            "objects": listed,
            "not_included": NOT_INCLUDED,
        }
        staged = sink.stage(MANIFEST)
        staged.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        sink.add(staged, MANIFEST)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    log.info("backup of factory %s (%s) written to %s", factory["slug"], factory_id, out)
    return BackupResult(
        out=out,
        factory=info,
        rows={p["table"]: p["rows"] for p in parts},
        objects=len(listed),
        object_bytes=total,
        manifest=manifest,
    )


# ---------------------------------------------------------------------------- restore
@contextmanager
def _opened(source: Path) -> Iterator[Path]:
    """The backup as a folder: the folder itself, or a tarball unpacked into a temporary one."""
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise BackupError(f"{source} does not exist; give the backup's folder or .tar.gz file")
    with tempfile.TemporaryDirectory(prefix=".factoryops-restore-", dir=source.parent) as tmp:
        try:
            with tarfile.open(source, "r:*") as tar:
                # "data": no absolute paths, no links out of the folder, no devices.
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{source} is not a readable backup archive: {exc}") from exc
        yield Path(tmp)


def _load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"no {MANIFEST} in the backup: {folder} is not a FactoryOps factory backup")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"the backup's {MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} is not the manifest of a FactoryOps factory backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"the backup has format version {manifest.get('format_version')}; this FactoryOps reads version "
            f"{FORMAT_VERSION}: restore it with the FactoryOps version that wrote it"
        )
    return manifest


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise BackupError(f"the manifest names a file outside the backup: {name!r}")
    return path


def verify(folder: Path, manifest: dict[str, Any]) -> None:
    """Every part is there, with the SHA-256 (and row count or size) the manifest says."""
    problems = []
    for part in manifest["tables"]:
        path = _inside(folder, part["file"])
        if not path.is_file():
            problems.append(f"{part['file']} is missing")
            continue
        found = _sha256_file(path)
        if found != part["sha256"]:
            problems.append(f"{part['file']} has SHA-256 {found[:16]}..., the manifest says {part['sha256'][:16]}...")
            continue
        with path.open("rb") as fh:
            lines = sum(1 for _ in fh)
        if lines != part["rows"]:
            problems.append(f"{part['file']} holds {lines} rows, the manifest says {part['rows']}")
    for obj in manifest["objects"]:
        path = _inside(folder, obj["file"])
        if not path.is_file():
            problems.append(f"object {obj['key']} ({obj['file']}) is missing")
        elif _sha256_file(path) != obj["sha256"]:
            problems.append(f"object {obj['key']} does not match its SHA-256 in the manifest")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BackupError(
            f"the backup is damaged or was changed after it was written, nothing was restored: {shown}. "
            "Restore from another copy of the backup."
        )


def _read_rows(path: Path, decoders: dict[str, Callable[[Any], Any]], table: str) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            data = json.loads(line)
            unknown = set(data) - set(decoders)
            if unknown:
                raise BackupError(f"{table} row {number} has columns this schema lacks: {', '.join(sorted(unknown))}")
            yield {name: decoders[name](value) for name, value in data.items()}


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class RestoreResult:
    factory: dict[str, str]
    replaced: bool
    rows: dict[str, int]
    objects: int
    objects_removed: int
    properties_kept: int = 0  # learnt after the backup, kept by a --replace (properties are never deleted)


# The factory's property vocabulary: learnt from telemetry that stays in the time-series store
# whatever a restore does, so a --replace keeps what was learnt after the backup.
VOCABULARY = ("properties", "device_properties")


def restore_factory(db: Database, objects: ObjectStore | None, source: Path, replace: bool = False) -> RestoreResult:
    """Restore the factory in the backup at ``source`` into this platform (see the module docstring)."""
    with _opened(source) as folder:
        manifest = _load_manifest(folder)
        verify(folder, manifest)
        revision = _check_schema(db, "restore")
        if manifest["schema_revision"] != revision:
            raise BackupError(
                f"the backup was made at schema revision {manifest['schema_revision']}, this database is at "
                f"{revision}: restore it into a platform of the FactoryOps version that made it (migrated to "
                "that revision), then upgrade that platform"
            )
        tables = {t.name: t for t in [_factories_table(), *factory_tables()]}
        in_backup = [part["table"] for part in manifest["tables"]]
        if set(in_backup) != set(tables):
            missing = sorted(set(tables) - set(in_backup))
            extra = sorted(set(in_backup) - set(tables))
            raise BackupError(
                "the backup's tables do not match this schema"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(extra)}" if extra else "")
            )
        factory = manifest["factory"]
        factory_id = factory["id"]
        if manifest["objects"] and objects is None:
            raise BackupError("the backup holds objects but this platform has no object store configured")
        if objects is not None and (manifest["objects"] or replace):
            try:
                objects.ping()
            except ObjectStoreError as exc:
                raise BackupError(f"the object store cannot be reached, nothing was restored: {exc}") from exc
        files = {part["table"]: _inside(folder, part["file"]) for part in manifest["tables"]}
        counts: dict[str, int] = {}
        # ESCAPE HATCH: one factory's rows in every tenant table, in one transaction; each statement names its id.
        with db.unscoped_session() as s:
            factories = tables[FACTORIES]
            rows = list(_read_rows(files[FACTORIES], {c.name: _decoder(c) for c in factories.c}, FACTORIES))
            if len(rows) != 1 or rows[0].get("id") != factory_id:
                raise BackupError("the backup's factories part does not hold exactly the factory of its manifest")
            clash = s.execute(
                select(factories.c.id).where(factories.c.slug == rows[0]["slug"], factories.c.id != factory_id)
            ).first()
            if clash is not None:
                raise BackupError(
                    f"another factory ({clash[0]}) already uses the slug {rows[0]['slug']!r} in this platform; "
                    "rename that factory's slug first"
                )
            exists = s.execute(select(factories.c.id).where(factories.c.id == factory_id)).first() is not None
            if exists and not replace:
                raise BackupError(
                    f"factory {factory['slug']} ({factory_id}) exists in this platform; nothing was restored. "
                    "Use --replace to overwrite it: its current rows and objects are deleted first"
                )
            learnt = _vocabulary(s, tables, factory_id) if exists else {}
            if exists:
                for name in reversed(list(tables)):
                    table = tables[name]
                    column = table.c.id if name == FACTORIES else table.c.factory_id
                    s.execute(delete(table).where(column == factory_id))
                _revoke_sessions(s, factory_id)
            for name, table in tables.items():
                decoders = {c.name: _decoder(c) for c in table.c}
                counts[name] = 0
                for batch in _batches(_read_rows(files[name], decoders, name), INSERT_BATCH):
                    if name != FACTORIES and any(row.get("factory_id") != factory_id for row in batch):
                        raise BackupError(f"{name} holds rows of another factory than {factory_id}: refused")
                    try:
                        s.execute(insert(table), batch)
                    except IntegrityError as exc:
                        raise BackupError(
                            f"the backup's {name} rows conflict with rows already in this database "
                            f"({exc.orig}); nothing was restored"
                        ) from exc
                    counts[name] += len(batch)
            kept = _keep_learnt(s, tables, factory_id, learnt)
        restored, removed = _restore_objects(objects, folder, manifest, factory_id, replace=exists)
    log.info("factory %s (%s) restored from %s", factory["slug"], factory_id, source)
    return RestoreResult(
        factory=factory, replaced=exists, rows=counts, objects=restored, objects_removed=removed, properties_kept=kept
    )


def _vocabulary(s: Session, tables: dict[str, Table], factory_id: str) -> dict[str, list[dict[str, Any]]]:
    """The factory's property rows as they are before a --replace deletes them."""
    return {
        name: [
            dict(row)
            for row in s.execute(select(tables[name]).where(tables[name].c.factory_id == factory_id)).mappings()
        ]
        for name in VOCABULARY
    }


def _keep_learnt(s: Session, tables: dict[str, Table], factory_id: str, learnt: dict[str, list[dict[str, Any]]]) -> int:
    """Puts back the properties learnt after the backup: the factory's vocabulary keeps every name its
    stored telemetry uses, and a device the backup holds keeps the properties it reported since.
    A device the backup does not hold is gone, and so are its own property rows."""
    if not learnt:
        return 0
    props, links, devices = tables["properties"], tables["device_properties"], tables["devices"]
    names = set(s.execute(select(props.c.name).where(props.c.factory_id == factory_id)).scalars())
    new_props = [row for row in learnt["properties"] if row["name"] not in names]
    if new_props:
        s.execute(insert(props), new_props)
    known = set(s.execute(select(devices.c.device_id).where(devices.c.factory_id == factory_id)).scalars())
    linked = {
        (row.device_id, row.property_name)
        for row in s.execute(select(links.c.device_id, links.c.property_name).where(links.c.factory_id == factory_id))
    }
    new_links = [
        row
        for row in learnt["device_properties"]
        if row["device_id"] in known and (row["device_id"], row["property_name"]) not in linked
    ]
    if new_links:
        s.execute(insert(links), new_links)
    if new_props or new_links:
        log.info(
            "restore kept %d properties and %d device properties learnt after the backup",
            len(new_props),
            len(new_links),
        )
    return len(new_props)


def _revoke_sessions(s: Session, factory_id: str) -> None:
    """Sessions of the replaced factory end: its users sign in again against the restored accounts."""
    from factoryops.tenancy.models import AuthSession

    sessions: Table = AuthSession.__table__  # type: ignore[assignment]
    s.execute(
        update(sessions)
        .where(sessions.c.factory_id == factory_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _restore_objects(
    objects: ObjectStore | None, folder: Path, manifest: dict[str, Any], factory_id: str, replace: bool
) -> tuple[int, int]:
    if objects is None:
        return 0, 0
    scope = FactoryScope(factory_id)
    wanted = {obj["key"]: obj for obj in manifest["objects"]}
    removed = 0
    try:
        if replace:  # the factory's objects become exactly the backup's
            for info in objects.list(scope):
                if str(info.key) not in wanted:
                    objects.delete(scope, info.key)
                    removed += 1
        for key, obj in wanted.items():
            objects.put_file(scope, Key.parse(key), _inside(folder, obj["file"]))
    except ObjectStoreError as exc:
        raise BackupError(
            f"the metadata is restored but putting the objects back failed: {exc}. Run the same restore again "
            "with --replace once the object store is reachable"
        ) from exc
    return len(wanted), removed


# ---------------------------------------------------------------------------- the CLI
def _stores(settings: Any, timeseries: bool = False) -> tuple[Database, ObjectStore, Any]:
    from factoryops.models import import_all_models
    from factoryops.ports.objectstore import build_objectstore
    from factoryops.wiring import build_timeseries

    import_all_models()
    db = Database(settings.database_url, pool_size=2)
    objects = build_objectstore(settings.objectstore, settings.data_dir)
    return db, objects, build_timeseries(settings) if timeseries else None


def _summary(rows: dict[str, int]) -> str:
    total = sum(n for name, n in rows.items() if name != FACTORIES)
    used = sum(1 for name, n in rows.items() if n and name != FACTORIES)
    return f"{total:,} rows in {used} tables"


def cmd_backup(args: argparse.Namespace) -> int:
    from factoryops.entrypoints.cli import _logging, _settings

    settings = _settings()
    _logging(settings)
    db, objects, _ = _stores(settings)
    try:
        result = backup_factory(db, objects, args.factory, Path(args.out))
    except BackupError as exc:
        print(f"factoryops backup: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    f = result.factory
    print(
        f"backup of factory {f['slug']} ({f['id']}) written to {result.out}: {_summary(result.rows)}, "
        f"{result.objects} objects ({result.object_bytes:,} bytes).\n"
        "Time-series telemetry is not in it: use `factoryops export-factory` or InfluxDB's own backup "
        "(docs/operations.md)."
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from factoryops.entrypoints.cli import _logging, _settings

    settings = _settings()
    _logging(settings)
    db, objects, _ = _stores(settings)
    try:
        result = restore_factory(db, objects, Path(args.input), replace=args.replace)
    except BackupError as exc:
        print(f"factoryops restore: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    f = result.factory
    print(
        f"factory {f['slug']} ({f['id']}) {'replaced' if result.replaced else 'restored'}: {_summary(result.rows)}, "
        f"{result.objects} objects put back"
        + (f", {result.objects_removed} removed" if result.objects_removed else "")
        + (f"; {result.properties_kept} properties learnt since the backup kept" if result.properties_kept else "")
        + (". Its users' sessions were ended: they sign in again." if result.replaced else ".")
    )
    return 0


def cmd_export_factory(args: argparse.Namespace) -> int:
    from factoryops.entrypoints.cli import _logging, _settings
    from factoryops.tenancy.factory_export import export_factory

    settings = _settings()
    _logging(settings)
    db, objects, store = _stores(settings, timeseries=True)
    try:
        since = datetime.fromisoformat(args.since) if args.since else None
        until = datetime.fromisoformat(args.until) if args.until else None
        result = export_factory(db, objects, store, args.factory, Path(args.out), since=since, until=until)
    except (BackupError, ValueError) as exc:
        print(f"factoryops export-factory: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
        db.dispose()
    print(
        f"factory {result.backup.factory['slug']} exported to {result.out}: {_summary(result.backup.rows)}, "
        f"{result.backup.objects} objects, {result.points:,} telemetry points of {result.devices} devices "
        "(see README.txt there)."
    )
    return 0


def register(sub: Any) -> None:
    """Adds ``backup``, ``restore`` and ``export-factory`` to the CLI's subcommands."""
    b = sub.add_parser("backup", help="back up one factory's metadata and objects (not its telemetry)")
    b.add_argument("--factory", required=True, help="the factory's id or slug")
    b.add_argument("--out", required=True, help="a new .tar.gz file, or a new (or empty) folder")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore one factory from a backup")
    r.add_argument("--in", dest="input", required=True, help="the backup's .tar.gz file or folder")
    r.add_argument(
        "--replace", action="store_true", help="overwrite the factory if it exists (its rows and objects go first)"
    )
    r.set_defaults(func=cmd_restore)
    e = sub.add_parser("export-factory", help="export one factory whole: metadata, objects and telemetry (Parquet)")
    e.add_argument("--factory", required=True, help="the factory's id or slug")
    e.add_argument("--out", required=True, help="a new (or empty) folder")
    e.add_argument("--since", default="", help="telemetry from this ISO time (default: each device's first value)")
    e.add_argument("--until", default="", help="telemetry until this ISO time (default: now)")
    e.set_defaults(func=cmd_export_factory)
