"""The object store port: where datasets, fitted models, run artifacts and reports are kept (spec 4.3, 8.2).

Keys are relative to a factory and are never written as raw strings:

- A :class:`Key` is a validated, ``/``-joined object key *under* a factory, built from its
  segments: ``Key("analytics", "datasets", dataset_id, "data.parquet")`` (or :func:`rel_key`).
  Each segment is one path component of ASCII letters, digits and ``. _ - =``; empty segments,
  ``.``, ``..``, slashes, backslashes, control characters and anything else are refused with a
  ``ValueError``. A ``Key`` is a ``str`` (it compares, formats and serialises as its text), but
  a plain ``str`` is never accepted where a ``Key`` is expected: stores raise ``TypeError``. A key
  read back from the database is turned into a ``Key`` again by :meth:`Key.parse`, which applies
  the same checks.
- Every store method takes the :class:`FactoryScope` first, then the ``Key``. The store alone
  prefixes the factory (:func:`object_key`), so the stored object is always
  ``{factory_id}/{key}``: in S3 ``s3://{bucket}/{factory_id}/...``, on disk
  ``{root}/{factory_id}/...``. No caller can name an object of another factory, and the same
  relative key in two factories names two different objects.

Guarantees, identical for both adapters (one contract suite checks them):

- A write is atomic: a reader sees the old content or the new one, never a part. ``put_if_absent``
  writes only when no object has the key and says whether it did; it is how immutable snapshots
  are committed (write the data, then ``put_if_absent`` the manifest).
- ``list`` returns only that factory's objects, under an optional folder ``prefix`` (a ``Key``:
  whole segments, so ``analytics/data`` does not match ``analytics/datasets``), sorted by key.
- A key cannot be both an object and the folder of another object (``a/b`` and ``a/b/c``): a
  folder on disk cannot be a file. Lay keys out so that objects are leaves.
- Errors: :class:`ObjectNotFound` (no such object), :class:`ObjectStoreUnavailable` (the store
  cannot be reached, times out, answers 5xx or refuses the credentials; retrying later may help:
  analytics refuses to start then, spec 10.5), :class:`ObjectStoreError` for anything else.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from factoryops.ports.timeseries.base import FactoryScope

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONTENT_TYPE",
    "FactoryScope",
    "Key",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "check_key",
    "object_key",
    "rel_key",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_CHUNK_SIZE = 1 << 20
# S3 allows 1024 bytes per key and file systems 255 per name; a factory id (a UUID) takes 37.
MAX_SEGMENT_LENGTH = 255
MAX_KEY_LENGTH = 900
_SEGMENT = re.compile(r"[A-Za-z0-9._=-]+")


class ObjectStoreError(Exception):
    """The object store could not do what was asked."""


class ObjectNotFound(ObjectStoreError):
    """There is no object with that key in that factory."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The object store cannot be reached or refuses to work right now; retrying later may succeed.

    Analytics answers this by refusing to start runs, with a system-level warning (spec 10.5).
    """


def _check_segment(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is empty; every part of an object key must name something")
    if value in (".", ".."):
        raise ValueError(f"{what} {value!r} is not allowed: a key cannot point to a folder above it")
    if "/" in value:
        raise ValueError(f"{what} {value!r} contains '/': give each folder of the key as a separate part")
    if len(value) > MAX_SEGMENT_LENGTH:
        raise ValueError(f"{what} is {len(value)} characters long; at most {MAX_SEGMENT_LENGTH} are allowed")
    if not _SEGMENT.fullmatch(value):
        raise ValueError(f"{what} {value!r} may only contain letters A-Z and a-z, digits and the characters . _ - =")
    return value


class Key(str):
    """An object key relative to a factory, valid by construction: ``Key("analytics", "runs", run_id)``.

    Its text is the segments joined by ``/``. Build it from segments, extend it with :meth:`child`,
    or parse stored text with :meth:`parse`; every way applies the same checks.
    """

    __slots__ = ()

    def __new__(cls, *parts: str) -> Key:
        if not parts:
            raise ValueError("an object key needs at least one part")
        for i, part in enumerate(parts):
            _check_segment(f"key part {i + 1}", part)
        text = "/".join(parts)
        if len(text) > MAX_KEY_LENGTH:
            raise ValueError(f"object key is {len(text)} characters long; at most {MAX_KEY_LENGTH} are allowed")
        return super().__new__(cls, text)

    @classmethod
    def parse(cls, text: str) -> Key:
        """The key of ``/``-joined text, e.g. one stored in the database; ``ValueError`` when invalid."""
        if not isinstance(text, str):
            raise TypeError(f"object key must be a string, not {type(text).__name__}")
        if text.startswith("/"):
            raise ValueError(f"object key {text!r} starts with '/': keys are relative to the factory")
        return cls(*text.split("/"))

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.split("/"))

    @property
    def name(self) -> str:
        """The last segment, e.g. ``data.parquet``."""
        return self.rsplit("/", 1)[-1]

    def child(self, *parts: str) -> Key:
        """This key extended by more segments: the key of an object inside this folder."""
        return Key(*self.parts, *parts)

    def is_under(self, prefix: Key) -> bool:
        """True when this key lies inside the folder ``prefix`` (whole segments only)."""
        return self.startswith(prefix + "/")

    def __getnewargs__(self) -> tuple[str, ...]:  # type: ignore[override]
        # pickle and copy rebuild a str subclass from __getnewargs__; hand them the segments.
        return self.parts

    def __repr__(self) -> str:
        return f"Key({str(self)!r})"


def rel_key(*parts: str) -> Key:
    """The validated relative key of ``parts`` (one path segment each)."""
    return Key(*parts)


def check_key(key: object) -> Key:
    """``key`` itself when it is a :class:`Key`; stores call this so a plain string never slips through."""
    if not isinstance(key, Key):
        raise TypeError(
            f"object keys must be built with Key(...) or rel_key(...), not given as {type(key).__name__} {key!r}"
        )
    return key


def factory_segment(scope: FactoryScope) -> str:
    """The factory id as the first key segment; ``ValueError`` when it could not be one."""
    if not isinstance(scope, FactoryScope):
        raise TypeError(f"the factory must be given as a FactoryScope, not {type(scope).__name__}")
    return _check_segment("factory id", scope.factory_id)


def object_key(scope: FactoryScope, *parts: str) -> str:
    """The full key ``{factory_id}/{parts...}`` of an object; the only way keys get a factory prefix."""
    return f"{factory_segment(scope)}/{Key(*parts)}"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object.

    ``sha256`` is the hex digest of the content when the adapter knows it without reading the object
    again: always on what a put returns; on ``stat`` from S3 for objects this port wrote; otherwise
    None. ``etag`` changes whenever the content is replaced (S3's ETag, or mtime and size on disk).
    """

    key: Key
    size: int
    last_modified: datetime
    etag: str | None = None
    sha256: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """Objects of each factory, kept under ``{factory_id}/``. See the module docstring for the rules."""

    def put_bytes(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Write ``data`` under ``key`` atomically, replacing any object there."""
        ...

    def put_file(
        self, scope: FactoryScope, key: Key, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Write the file at ``path`` under ``key`` atomically, streaming it (multipart on S3)."""
        ...

    def put_if_absent(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> bool:
        """Write ``data`` only when no object has ``key``; True when this call wrote it."""
        ...

    def get_bytes(self, scope: FactoryScope, key: Key) -> bytes:
        """The whole content; raises ObjectNotFound. For big objects use download_to or iter_chunks."""
        ...

    def download_to(self, scope: FactoryScope, key: Key, path: Path) -> None:
        """Stream the object into ``path``; the file appears complete or not at all."""
        ...

    def iter_chunks(self, scope: FactoryScope, key: Key, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The content in chunks, for streaming HTTP downloads.

        The object is opened by the call itself, so ObjectNotFound is raised before any chunk is
        sent; close the iterator (or read it to the end) to release the connection or file.
        """
        ...

    def exists(self, scope: FactoryScope, key: Key) -> bool:
        """True when an object has ``key`` (a folder of other objects is not an object)."""
        ...

    def stat(self, scope: FactoryScope, key: Key) -> ObjectInfo:
        """Size, time and tags of one object; raises ObjectNotFound."""
        ...

    def list(self, scope: FactoryScope, prefix: Key | None = None) -> builtins.list[ObjectInfo]:
        """Every object of the factory inside the folder ``prefix`` (all when None), sorted by key."""
        ...

    def delete(self, scope: FactoryScope, key: Key) -> None:
        """Remove the object; nothing happens when there is none."""
        ...

    def uri(self, scope: FactoryScope, key: Key) -> str:
        """Where the object lives, for people and manifests: ``s3://bucket/...`` or ``file:///...``."""
        ...

    def ping(self) -> None:
        """Raise ObjectStoreUnavailable when the store cannot be reached or written right now."""
        ...
