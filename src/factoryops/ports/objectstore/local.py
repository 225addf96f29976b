"""The object store in a local folder, for ``factoryops up`` and single-machine installs.

The layout is the S3 one: the object ``{factory_id}/analytics/...`` is the file
``{root}/{factory_id}/analytics/...``. Writes go to a temporary file in the target folder, are
flushed to disk, then renamed over the target (``os.replace``), so readers never see a partial
object. ``put_if_absent`` hard-links the finished temporary file to the target, which fails when
the target exists: the same no-replace guarantee as S3's ``If-None-Match: *``.

Every path is walked one folder at a time with ``O_NOFOLLOW`` from the root, so a symbolic link
planted inside the store (say ``{root}/{factory_id}/analytics -> /etc``) is refused instead of
followed. The root itself may be a link: that is the operator's choice.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from factoryops.ports.objectstore.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    FactoryScope,
    Key,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    check_key,
    factory_segment,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_COPY_CHUNK = 1 << 20
# '~' never appears in a key, so temporary files can neither collide with an object nor be listed.
_TEMP_MARK = "~"


class _Missing(Exception):
    """A folder on the way to the object does not exist (internal: becomes ObjectNotFound or [])."""


def _temp_name(name: str) -> str:
    return f".{_TEMP_MARK}{name[:64]}.{secrets.token_hex(8)}"


def _info(key: Key, st: os.stat_result, sha256: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        sha256=sha256,
    )


class _FileChunks(Iterator[bytes]):
    """Chunks of an open file; closes it at the end or on close()."""

    def __init__(self, file: BinaryIO, chunk_size: int) -> None:
        self._file = file
        self._size = chunk_size

    def __next__(self) -> bytes:
        if self._file.closed:
            raise StopIteration
        chunk = self._file.read(self._size)
        if not chunk:
            self._file.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._file.close()


class LocalObjectStore:
    """Objects as files under ``root`` (``{data_dir}/objects`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- paths and errors ----------------------------------------------------------------------

    def _path(self, scope: FactoryScope, key: Key | None = None) -> Path:
        path = self.root / factory_segment(scope)
        return path.joinpath(*key.parts) if key is not None else path

    def uri(self, scope: FactoryScope, key: Key) -> str:
        return self._path(scope, check_key(key)).as_uri()

    @contextmanager
    def _errors(self, doing: str, where: Path) -> Iterator[None]:
        try:
            yield
        except ObjectStoreError:
            raise
        except OSError as exc:
            raise ObjectStoreUnavailable(
                f"could not {doing} {where} in the object store folder: {exc.strerror or exc}"
            ) from exc

    @contextmanager
    def _folder(self, names: Sequence[str], create: bool) -> Iterator[int]:
        """An open descriptor of ``root/names...``, walked without following any symbolic link."""
        try:
            fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise _Missing from None
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            for i, name in enumerate(names):
                current, fd = fd, -1  # _enter closes ``current`` whatever happens
                fd = self._enter(current, name, create, self.root.joinpath(*names[: i + 1]))
            yield fd
        finally:
            if fd >= 0:
                os.close(fd)

    @staticmethod
    def _enter(fd: int, name: str, create: bool, path: Path) -> int:
        """The descriptor of folder ``name`` inside ``fd`` (which it closes), made when ``create``."""
        try:
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise _Missing from None
                with suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
                return os.open(name, _DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise ObjectStoreError(
                        f"refusing to follow the symbolic link {path}: objects must stay inside the store folder"
                    ) from None
                if not create:
                    raise _Missing from None
                raise ObjectStoreError(f"{path} is an object, so it cannot also be a folder of other objects") from None
        finally:
            os.close(fd)

    @contextmanager
    def _open(self, scope: FactoryScope, key: Key) -> Iterator[BinaryIO]:
        """The object's file opened for reading; ObjectNotFound when there is none."""
        key = check_key(key)
        path = self._path(scope, key)
        with self._errors("read", path):
            try:
                with self._folder((factory_segment(scope), *key.parts[:-1]), create=False) as folder:
                    fd = os.open(key.name, _READ_FLAGS, dir_fd=folder)
            except (_Missing, FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(f"there is no object {key} in factory {scope.factory_id}") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise ObjectStoreError(f"refusing to follow the symbolic link {path}") from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise ObjectNotFound(f"there is no object {key} in factory {scope.factory_id} (it is a folder)")
            with os.fdopen(fd, "rb") as file:
                yield file

    def _write(
        self, scope: FactoryScope, key: Key, fill: Callable[[BinaryIO], str], replace: bool
    ) -> ObjectInfo | None:
        """Write a temporary file with ``fill`` (which returns the sha256), then publish it as ``key``.

        Returns None when ``replace`` is False and the key already exists.
        """
        key = check_key(key)
        path = self._path(scope, key)
        with (
            self._errors("write", path),
            self._folder((factory_segment(scope), *key.parts[:-1]), create=True) as folder,
        ):
            temp = _temp_name(key.name)
            fd = os.open(temp, _NEW_FLAGS, 0o666, dir_fd=folder)
            try:
                with os.fdopen(fd, "wb") as file:
                    sha256 = fill(file)
                    file.flush()
                    os.fsync(file.fileno())
                    st = os.fstat(file.fileno())
                if replace:
                    try:
                        os.replace(temp, key.name, src_dir_fd=folder, dst_dir_fd=folder)
                    except IsADirectoryError:
                        raise ObjectStoreError(
                            f"{path} is a folder of other objects, so it cannot be an object"
                        ) from None
                elif not self._publish_new(folder, temp, key.name):
                    return None
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=folder)
            return _info(key, st, sha256)

    @staticmethod
    def _publish_new(folder: int, temp: str, name: str) -> bool:
        """Give the finished temporary file the name ``name`` unless that exists (no-replace rename)."""
        try:
            os.link(temp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
        # A file system without hard links: claim the name with O_EXCL, then swap the content in.
        # Readers may see an empty object for a moment; no writer can replace another's.
        try:
            os.close(os.open(name, _NEW_FLAGS, 0o666, dir_fd=folder))
        except FileExistsError:
            return False
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        return True

    # -- the port ------------------------------------------------------------------------------

    def put_bytes(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        def fill(file: BinaryIO) -> str:
            file.write(data)
            return hashlib.sha256(data).hexdigest()

        info = self._write(scope, key, fill, replace=True)
        assert info is not None
        return info

    def put_file(
        self, scope: FactoryScope, key: Key, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        with Path(path).open("rb") as source:  # a missing source is the caller's error, not the store's

            def fill(file: BinaryIO) -> str:
                digest = hashlib.sha256()
                while chunk := source.read(_COPY_CHUNK):
                    digest.update(chunk)
                    file.write(chunk)
                return digest.hexdigest()

            info = self._write(scope, key, fill, replace=True)
        assert info is not None
        return info

    def put_if_absent(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> bool:
        def fill(file: BinaryIO) -> str:
            file.write(data)
            return hashlib.sha256(data).hexdigest()

        return self._write(scope, key, fill, replace=False) is not None

    def get_bytes(self, scope: FactoryScope, key: Key) -> bytes:
        with self._open(scope, key) as file, self._errors("read", self._path(scope, key)):
            return file.read()

    def download_to(self, scope: FactoryScope, key: Key, path: Path) -> None:
        path = Path(path)
        with self._open(scope, key) as source:
            temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
            where = self._path(scope, key)
            try:
                # Errors writing ``path`` are the caller's disk, so they stay plain OSError.
                with temp.open("wb") as out:
                    while True:
                        with self._errors("read", where):
                            chunk = source.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)

    def iter_chunks(self, scope: FactoryScope, key: Key, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        with self._open(scope, key) as file:
            # The file outlives this block: the iterator owns it now and closes it when done.
            return _FileChunks(os.fdopen(os.dup(file.fileno()), "rb"), chunk_size)

    def stat(self, scope: FactoryScope, key: Key) -> ObjectInfo:
        with self._open(scope, key) as file:
            return _info(key, os.fstat(file.fileno()))

    def exists(self, scope: FactoryScope, key: Key) -> bool:
        try:
            self.stat(scope, key)
        except ObjectNotFound:
            return False
        return True

    def list(self, scope: FactoryScope, prefix: Key | None = None) -> builtins.list[ObjectInfo]:
        base = () if prefix is None else check_key(prefix).parts
        where = self._path(scope, None if prefix is None else Key(*base))
        found: builtins.list[ObjectInfo] = []
        with self._errors("list", where):
            try:
                with self._folder((factory_segment(scope), *base), create=False) as folder:
                    for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=folder):
                        here = tuple(p for p in dirpath.split("/") if p != ".")
                        dirnames[:] = [d for d in dirnames if _valid(d)]
                        for name in filenames:
                            if not _valid(name):
                                continue  # temporary files and names no Key could have
                            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                            if stat.S_ISREG(st.st_mode):
                                found.append(_info(Key(*base, *here, name), st))
            except _Missing:
                return []
        found.sort(key=lambda info: info.key)
        return found

    def delete(self, scope: FactoryScope, key: Key) -> None:
        key = check_key(key)
        path = self._path(scope, key)
        with self._errors("delete", path):
            try:
                with self._folder((factory_segment(scope), *key.parts[:-1]), create=False) as folder:
                    os.unlink(key.name, dir_fd=folder)
            except (_Missing, FileNotFoundError, IsADirectoryError):
                return

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / _temp_name("ping")
            os.close(os.open(probe, _NEW_FLAGS, 0o666))
            probe.unlink()
        except OSError as exc:
            raise ObjectStoreUnavailable(
                f"the object store folder {self.root} cannot be written: {exc.strerror or exc}"
            ) from exc


def _valid(name: str) -> bool:
    try:
        Key(name)
    except ValueError:
        return False
    return True
