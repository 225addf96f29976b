"""The object store on S3: MinIO in production, AWS S3, or ``moto_server`` in tests.

One bucket (``factoryops`` by default) holds every factory, each under its own ``{factory_id}/``
prefix (spec 4.3). The bucket is created on first use when it is missing, so the platform can start
while the store is still down: :meth:`S3ObjectStore.ping` then raises ObjectStoreUnavailable and
analytics refuses to start runs (spec 10.5).

Requests give up quickly on a dead endpoint (3 s to connect, two attempts), so a caller learns
within seconds, not minutes, that the store is unreachable. Network errors, timeouts, HTTP 5xx and
refused credentials become ObjectStoreUnavailable; a missing object becomes ObjectNotFound.

``put_file`` streams the file with ``upload_file`` (multipart above 8 MiB), and ``put_if_absent``
asks first (HEAD) and then writes with ``If-None-Match: *``: servers that honour the header (AWS S3,
MinIO, moto) let only one of two racing writers win. A server that ignored the header would leave
only the HEAD check: best effort.
"""

from __future__ import annotations

import builtins
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import boto3
import botocore.exceptions as bce
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

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
    object_key,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

_HASH_CHUNK = 1 << 20
# Errors of the connection itself: the endpoint is down, unreachable or too slow.
_NETWORK_ERRORS = (
    bce.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError
    bce.HTTPClientError,
    bce.ResponseStreamingError,
    bce.NoCredentialsError,
    bce.PartialCredentialsError,
)
_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404"}
_BUSY_CODES = {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "503", "500"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401", "ExpiredToken"}
_CONFLICT_RETRIES = 3


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _session() -> boto3.session.Session:
    """One boto3 session for every store of the process: it loads the S3 service model once (~0.5 s)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: boto3's transfer errors carry the real one inside."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, RetriesExceededError):
            inner = getattr(current, "last_exception", None)
            if isinstance(inner, BaseException):
                current = inner
                continue
        current = current.__cause__ or current.__context__


def _code(exc: bce.ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def _server_time(response: Any) -> datetime:
    """The server's clock from a response's Date header (S3 times are whole seconds too)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC).replace(microsecond=0)


def _etag(value: object) -> str | None:
    return value.strip('"') if isinstance(value, str) else None


class _BodyChunks(Iterator[bytes]):
    """Chunks of an S3 response body; errors while reading become the port's errors."""

    def __init__(self, body: StreamingBody, chunk_size: int, translate: Callable[[Exception], NoReturn]) -> None:
        self._body = body
        self._size = chunk_size
        self._translate = translate
        self._done = False

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        try:
            chunk = self._body.read(self._size)
        except Exception as exc:
            self.close()
            self._translate(exc)
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._done = True
        self._body.close()


class S3ObjectStore:
    """Objects in one S3 bucket, each factory's under ``{factory_id}/``."""

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        max_attempts: int = 2,
        ping_timeout: float = 5.0,
    ) -> None:
        if not bucket:
            raise ValueError("the S3 bucket name is empty; set FACTORYOPS_OBJECTSTORE__S3_BUCKET")
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        config = Config(
            region_name=region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts},
            signature_version="s3v4",
            # MinIO and other S3 servers are addressed as http://host:port/bucket/key.
            s3={"addressing_style": "path"},
            # Only send and check checksums S3 requires: older MinIO releases reject the rest.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # ping() must answer within seconds even when the server accepts connections but hangs.
        probe = config.merge(
            Config(
                connect_timeout=min(connect_timeout, ping_timeout),
                read_timeout=ping_timeout,
                retries={"max_attempts": 0},
            )
        )
        with _SESSION_LOCK:  # building clients from one session is not thread-safe; using them is
            session = _session()
            self._client: S3Client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
            self._probe: S3Client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=probe,
            )
        self._transfer = TransferConfig(max_concurrency=4, num_download_attempts=2)
        self._bucket_ready = False

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.endpoint_url or 'AWS'!r}, bucket={self.bucket!r})"

    # -- errors and the bucket -----------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"the object store at {self.endpoint_url or 'AWS S3'} (bucket {self.bucket})"

    def _raise(self, exc: Exception, doing: str) -> NoReturn:
        """Raise the port's error for a boto3/botocore error met while ``doing`` something."""
        for cause in _causes(exc):
            if isinstance(cause, ObjectStoreError):
                raise cause
            if isinstance(cause, bce.ClientError):
                code, status = _code(cause)
                if code == "NoSuchBucket":
                    self._bucket_ready = False  # recreate it on the next call
                    raise ObjectStoreUnavailable(
                        f"could not {doing}: bucket {self.bucket} does not exist at {self._where}"
                    ) from exc
                if code in _NOT_FOUND_CODES or status == 404:
                    raise ObjectNotFound(f"could not {doing}: there is no such object") from exc
                if code in _BUSY_CODES or status >= 500:
                    self._bucket_ready = False
                    raise ObjectStoreUnavailable(
                        f"could not {doing}: {self._where} answered HTTP {status} {code}; try again later"
                    ) from exc
                if code in _DENIED_CODES or status in (401, 403):
                    raise ObjectStoreUnavailable(
                        f"could not {doing}: {self._where} refused the access key (HTTP {status} {code}); "
                        "check FACTORYOPS_OBJECTSTORE__S3_ACCESS_KEY and __S3_SECRET_KEY"
                    ) from exc
                raise ObjectStoreError(f"could not {doing}: {self._where} answered HTTP {status} {code}") from exc
            if isinstance(cause, _NETWORK_ERRORS):
                self._bucket_ready = False  # the store may come back empty (a fresh MinIO volume)
                raise ObjectStoreUnavailable(f"could not {doing}: {self._where} cannot be reached ({cause})") from exc
        raise ObjectStoreError(f"could not {doing} in {self._where}: {exc}") from exc

    @contextmanager
    def _calling(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (bce.BotoCoreError, bce.ClientError, S3UploadFailedError, RetriesExceededError) as exc:
            self._raise(exc, doing)

    def ensure_bucket(self, *, quick: bool = False) -> None:
        """Create the bucket when it is missing; ObjectStoreUnavailable when the store cannot be reached.

        ``quick`` asks once with the short ping timeout instead of the usual timeouts and retries.
        """
        with self._calling(f"reach bucket {self.bucket}"):
            try:
                (self._probe if quick else self._client).head_bucket(Bucket=self.bucket)
            except bce.ClientError as exc:
                code, status = _code(exc)
                if status != 404 and code not in ("NoSuchBucket", "NotFound", "404"):
                    raise
                self._create_bucket()
        self._bucket_ready = True

    def _create_bucket(self) -> None:
        try:
            if self.region == "us-east-1":
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except bce.ClientError as exc:
            if _code(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _ready(self) -> None:
        if not self._bucket_ready:
            self.ensure_bucket()

    def _full(self, scope: FactoryScope, key: Key) -> str:
        return object_key(scope, *check_key(key).parts)

    def uri(self, scope: FactoryScope, key: Key) -> str:
        return f"s3://{self.bucket}/{self._full(scope, key)}"

    # -- the port ------------------------------------------------------------------------------

    def put_bytes(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        full = self._full(scope, key)
        sha256 = hashlib.sha256(data).hexdigest()
        self._ready()
        with self._calling(f"write {full}"):
            response = self._client.put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentType=content_type, Metadata={"sha256": sha256}
            )
        return ObjectInfo(key, len(data), _server_time(response), _etag(response.get("ETag")), sha256)

    def put_file(
        self, scope: FactoryScope, key: Key, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        full = self._full(scope, key)
        digest = hashlib.sha256()
        with Path(path).open("rb") as source:  # a missing source is the caller's error, not the store's
            while chunk := source.read(_HASH_CHUNK):
                digest.update(chunk)
        sha256 = digest.hexdigest()
        self._ready()
        with self._calling(f"upload {path} to {full}"):
            self._client.upload_file(
                str(path),
                self.bucket,
                full,
                ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": sha256}},
                Config=self._transfer,
            )
        info = self.stat(scope, key)
        return ObjectInfo(info.key, info.size, info.last_modified, info.etag, sha256)

    def put_if_absent(
        self, scope: FactoryScope, key: Key, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> bool:
        full = self._full(scope, key)
        if self.exists(scope, key):
            return False
        sha256 = hashlib.sha256(data).hexdigest()
        for attempt in range(_CONFLICT_RETRIES):
            with self._calling(f"write {full}"):
                try:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=full,
                        Body=data,
                        ContentType=content_type,
                        Metadata={"sha256": sha256},
                        IfNoneMatch="*",
                    )
                    return True
                except bce.ClientError as exc:
                    code, status = _code(exc)
                    if status == 412 or code == "PreconditionFailed":
                        return False
                    if status != 409 or attempt + 1 == _CONFLICT_RETRIES:
                        raise
            # 409: another conditional write of this key is in flight; ask again once it is done.
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def get_bytes(self, scope: FactoryScope, key: Key) -> bytes:
        body = self._get(scope, key)
        with self._calling(f"read {self._full(scope, key)}"):
            try:
                return body.read()
            finally:
                body.close()

    def _get(self, scope: FactoryScope, key: Key) -> StreamingBody:
        full = self._full(scope, key)
        self._ready()
        with self._calling(f"read {full}"):
            try:
                return self._client.get_object(Bucket=self.bucket, Key=full)["Body"]
            except bce.ClientError as exc:
                self._missing(exc, scope, key)

    def _missing(self, exc: bce.ClientError, scope: FactoryScope, key: Key) -> NoReturn:
        code, status = _code(exc)
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            raise ObjectNotFound(f"there is no object {key} in factory {scope.factory_id}") from exc
        raise exc

    def download_to(self, scope: FactoryScope, key: Key, path: Path) -> None:
        full = self._full(scope, key)
        self._ready()
        path = Path(path)
        # s3transfer writes to a temporary file beside ``path`` and renames it when complete.
        with self._calling(f"download {full}"):
            try:
                self._client.download_file(self.bucket, full, str(path), Config=self._transfer)
            except bce.ClientError as exc:
                self._missing(exc, scope, key)

    def iter_chunks(self, scope: FactoryScope, key: Key, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        full = self._full(scope, key)
        body = self._get(scope, key)

        def translate(exc: Exception) -> NoReturn:
            self._raise(exc, f"read {full}")

        return _BodyChunks(body, chunk_size, translate)

    def stat(self, scope: FactoryScope, key: Key) -> ObjectInfo:
        full = self._full(scope, key)
        self._ready()
        with self._calling(f"look up {full}"):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=full)
            except bce.ClientError as exc:
                self._missing(exc, scope, key)
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            last_modified=head["LastModified"].astimezone(UTC),
            etag=_etag(head.get("ETag")),
            sha256=head.get("Metadata", {}).get("sha256"),
        )

    def exists(self, scope: FactoryScope, key: Key) -> bool:
        try:
            self.stat(scope, key)
        except ObjectNotFound:
            return False
        return True

    def list(self, scope: FactoryScope, prefix: Key | None = None) -> builtins.list[ObjectInfo]:
        base = f"{factory_segment(scope)}/"
        search = base if prefix is None else f"{base}{check_key(prefix)}/"
        self._ready()
        found: builtins.list[ObjectInfo] = []
        with self._calling(f"list {search}"):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=search):
                for item in page.get("Contents", []):
                    try:
                        key = Key.parse(item["Key"][len(base) :])
                    except ValueError:
                        continue  # written by another tool under a name no Key could have
                    found.append(
                        ObjectInfo(
                            key, int(item["Size"]), item["LastModified"].astimezone(UTC), _etag(item.get("ETag"))
                        )
                    )
        found.sort(key=lambda info: info.key)
        return found

    def delete(self, scope: FactoryScope, key: Key) -> None:
        full = self._full(scope, key)
        self._ready()
        with self._calling(f"delete {full}"):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def ping(self) -> None:
        self.ensure_bucket(quick=True)
