"""Object store port: datasets, models, run artifacts and reports, each factory under ``{factory_id}/``.

Domain code imports from here or from ``base`` only; :func:`build_objectstore` picks the adapter from
settings (a folder in the data folder, or S3 / MinIO).
"""

from __future__ import annotations

from pathlib import Path

from factoryops.core.settings import ObjectStoreSettings
from factoryops.ports.objectstore.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    FactoryScope,
    Key,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    object_key,
    rel_key,
)

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
    "build_objectstore",
    "object_key",
    "rel_key",
]

BACKENDS = ("local", "s3")


def build_objectstore(settings: ObjectStoreSettings, data_dir: Path) -> ObjectStore:
    """The store the settings ask for; nothing is contacted yet (``ping()`` checks it is reachable)."""
    backend = settings.backend.strip().lower()
    if backend == "local":
        from factoryops.ports.objectstore.local import LocalObjectStore

        return LocalObjectStore(Path(data_dir) / "objects")
    if backend == "s3":
        from factoryops.ports.objectstore.s3 import S3ObjectStore

        if not settings.s3_endpoint:
            raise ValueError(
                "FACTORYOPS_OBJECTSTORE__BACKEND is s3 but FACTORYOPS_OBJECTSTORE__S3_ENDPOINT is not set; "
                "give the MinIO / S3 URL, e.g. http://minio:9000"
            )
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_bucket,
            settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
            settings.s3_region,
        )
    raise ValueError(
        f"unknown object store backend {settings.backend!r} in FACTORYOPS_OBJECTSTORE__BACKEND; "
        f"use one of: {', '.join(BACKENDS)}"
    )
