"""The object store port's contract: both adapters (a local folder, S3 on moto_server) must pass all of it.

moto_server is a real S3 HTTP endpoint, started once per session here; every test gets a bucket
of its own (created by the adapter on first use), so tests never see each other's objects. Expected
contents and hashes are computed here from the bytes written, never read back from the store.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import secrets
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factoryops.core.settings import ObjectStoreSettings, Settings
from factoryops.ports.objectstore import build_objectstore
from factoryops.ports.objectstore.base import (
    FactoryScope,
    Key,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    object_key,
    rel_key,
)
from factoryops.ports.objectstore.local import LocalObjectStore
from factoryops.ports.objectstore.s3 import S3ObjectStore
from s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, moto_binary, moto_server

ADAPTERS = ["local", "s3"]
A = FactoryScope("3f2c9a1e-0000-4000-8000-00000000000a")
B = FactoryScope("3f2c9a1e-0000-4000-8000-00000000000b")
MB = 1 << 20


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    try:
        moto_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def s3_store(url: str, bucket: str | None = None) -> S3ObjectStore:
    return S3ObjectStore(url, bucket or f"contract-{secrets.token_hex(6)}", ACCESS_KEY, SECRET_KEY, REGION)


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """A fresh, empty store of each adapter."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    server: MotoServer = request.getfixturevalue("moto")
    return s3_store(server.url)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


# -- the port itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", [LocalObjectStore, S3ObjectStore])
def test_adapters_implement_every_method_with_the_port_signature(adapter: type) -> None:
    port_methods = {n for n, v in vars(ObjectStore).items() if callable(v) and not n.startswith("_")}
    assert port_methods >= {"put_bytes", "put_file", "put_if_absent", "get_bytes", "download_to", "iter_chunks"}
    for name in sorted(port_methods):
        expected = inspect.signature(getattr(ObjectStore, name))
        actual = inspect.signature(getattr(adapter, name))
        assert list(actual.parameters) == list(expected.parameters), f"{adapter.__name__}.{name}"
        for p in expected.parameters.values():
            assert actual.parameters[p.name].default == p.default, f"{adapter.__name__}.{name}({p.name})"
        # Every object method names the factory first: there is no unscoped read or write.
        if name not in ("ping",):
            assert list(expected.parameters)[1] == "scope", name


def test_keys_are_validated_segments() -> None:
    key = Key("analytics", "datasets", "ds-1", "data.parquet")
    assert key == "analytics/datasets/ds-1/data.parquet"
    assert key.parts == ("analytics", "datasets", "ds-1", "data.parquet")
    assert key.name == "data.parquet"
    assert rel_key("analytics", "runs") == Key("analytics", "runs")
    assert Key("analytics").child("runs", "r=1") == Key("analytics", "runs", "r=1")
    assert Key.parse("analytics/runs/r_1.json") == Key("analytics", "runs", "r_1.json")
    assert key.is_under(Key("analytics", "datasets"))
    assert not Key("analytics", "datasets-old", "x").is_under(Key("analytics", "datasets"))
    assert pickle.loads(pickle.dumps(key)) == key
    assert type(pickle.loads(pickle.dumps(key))) is Key
    assert object_key(A, "analytics", "runs", "r1") == f"{A.factory_id}/analytics/runs/r1"

    bad_parts: list[tuple[str, ...]] = [
        (),
        ("",),
        ("analytics", ""),
        ("..",),
        ("analytics", "..", "x"),
        (".",),
        ("analytics/runs",),
        ("/etc",),
        ("a\\b",),
        ("a\x00b",),
        ("line\nbreak",),
        ("tab\t",),
        ("space here",),
        ("café",),
        ("a" * 256,),
    ]
    for parts in bad_parts:
        with pytest.raises(ValueError):
            Key(*parts)
        if parts:
            with pytest.raises(ValueError):
                object_key(A, *parts)
    for text in ("/analytics/x", "analytics//x", "analytics/../x", "analytics/x/", "", "../x"):
        with pytest.raises(ValueError):
            Key.parse(text)
    with pytest.raises(TypeError):
        Key("analytics", 3)  # type: ignore[arg-type]
    # A factory id that is not one clean segment cannot become a key prefix.
    for factory_id in ("a/b", "..", "."):
        with pytest.raises(ValueError):
            object_key(FactoryScope(factory_id), "x")


def test_stores_refuse_plain_strings_and_bad_factories(store: ObjectStore) -> None:
    with pytest.raises(TypeError, match="Key"):
        store.put_bytes(A, "analytics/x", b"1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Key"):
        store.get_bytes(A, f"{B.factory_id}/analytics/x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FactoryScope"):
        store.put_bytes(A.factory_id, Key("x"), b"1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.put_bytes(FactoryScope(".."), Key("x"), b"1")
    with pytest.raises(ValueError):
        store.list(FactoryScope("a/b"))
    assert store.list(A) == []
    assert store.list(B) == []


# -- reading and writing -----------------------------------------------------------------------


def test_put_get_stat_exists(store: ObjectStore) -> None:
    key = Key("analytics", "datasets", "ds-1", "manifest.json")
    data = b'{"rows": 3}'
    before = datetime.now(UTC) - timedelta(seconds=2)
    info = store.put_bytes(A, key, data, content_type="application/json")
    assert (info.key, info.size, info.sha256) == (key, len(data), sha(data))
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=2)
    assert store.get_bytes(A, key) == data
    assert store.exists(A, key)
    stat = store.stat(A, key)
    assert (stat.key, stat.size) == (key, len(data))
    assert stat.sha256 in (None, sha(data))
    assert stat.etag == info.etag
    assert stat.last_modified.tzinfo is not None
    assert abs(stat.last_modified - info.last_modified) <= timedelta(seconds=1)
    assert store.get_bytes(A, Key("analytics", "datasets", "ds-1", "manifest.json")) == data
    empty = store.put_bytes(A, Key("empty"), b"")
    assert empty.size == 0 and store.get_bytes(A, Key("empty")) == b""


def test_a_put_replaces_the_object(store: ObjectStore) -> None:
    key = Key("reports", "weekly.json")
    first = store.put_bytes(A, key, b"first version")
    second = store.put_bytes(A, key, b"second")
    assert store.get_bytes(A, key) == b"second"
    assert store.stat(A, key).size == len(b"second")
    assert first.etag != second.etag
    assert [i.key for i in store.list(A)] == [key]


def test_missing_objects(store: ObjectStore, tmp_path: Path) -> None:
    key = Key("analytics", "runs", "missing.bin")
    for call in (store.get_bytes, store.stat):
        with pytest.raises(ObjectNotFound):
            call(A, key)
    with pytest.raises(ObjectNotFound):
        store.iter_chunks(A, key)  # raised by the call itself, before any chunk is asked for
    target = tmp_path / "download.bin"
    with pytest.raises(ObjectNotFound):
        store.download_to(A, key, target)
    assert [p.name for p in tmp_path.iterdir() if p.name != "objects"] == []  # no partial download either
    assert not store.exists(A, key)
    store.delete(A, key)  # deleting nothing is fine
    assert isinstance(ObjectNotFound("x"), ObjectStoreError)


def test_delete_is_idempotent(store: ObjectStore) -> None:
    key = Key("analytics", "runs", "r1", "model.joblib")
    other = Key("analytics", "runs", "r1", "metrics.json")
    store.put_bytes(A, key, b"model")
    store.put_bytes(A, other, b"{}")
    store.delete(A, key)
    store.delete(A, key)
    assert not store.exists(A, key)
    with pytest.raises(ObjectNotFound):
        store.get_bytes(A, key)
    assert [i.key for i in store.list(A)] == [other]
    store.put_bytes(A, key, b"again")
    assert store.get_bytes(A, key) == b"again"


def test_a_folder_is_not_an_object(store: ObjectStore) -> None:
    leaf = Key("analytics", "datasets", "ds-1", "data.parquet")
    store.put_bytes(A, leaf, b"PAR1")
    folder = Key("analytics", "datasets")
    assert not store.exists(A, folder)
    with pytest.raises(ObjectNotFound):
        store.get_bytes(A, folder)
    store.delete(A, folder)
    assert store.get_bytes(A, leaf) == b"PAR1"


def test_list_is_sorted_and_takes_whole_segments_as_prefix(store: ObjectStore) -> None:
    contents = {
        Key("analytics", "datasets", "ds-2", "data.parquet"): b"22",
        Key("analytics", "datasets", "ds-1", "data.parquet"): b"1",
        Key("analytics", "datasets", "ds-1", "manifest.json"): b"{1}",
        Key("analytics", "datasets-old", "x.csv"): b"old",
        Key("analytics", "runs", "r1", "metrics.json"): b"{}",
        Key("reports", "2024-01.pdf"): b"%PDF",
    }
    for key, data in contents.items():
        store.put_bytes(A, key, data)
    everything = store.list(A)
    assert [i.key for i in everything] == sorted(contents)
    assert {i.key: i.size for i in everything} == {k: len(v) for k, v in contents.items()}
    assert all(isinstance(i.key, Key) and i.last_modified.tzinfo is not None for i in everything)
    datasets = store.list(A, Key("analytics", "datasets"))
    assert [i.key for i in datasets] == [
        Key("analytics", "datasets", "ds-1", "data.parquet"),
        Key("analytics", "datasets", "ds-1", "manifest.json"),
        Key("analytics", "datasets", "ds-2", "data.parquet"),
    ]
    assert [i.key for i in store.list(A, Key("reports"))] == [Key("reports", "2024-01.pdf")]
    assert store.list(A, Key("analytics", "nothing-here")) == []
    assert store.list(A, Key("reports", "2024-01.pdf")) == []  # an object is not a folder
    with pytest.raises(TypeError):
        store.list(A, "analytics")  # type: ignore[arg-type]


def test_factories_are_isolated(store: ObjectStore) -> None:
    key = Key("analytics", "datasets", "ds-1", "data.parquet")
    store.put_bytes(A, key, b"factory A")
    store.put_bytes(B, key, b"factory B, longer")
    store.put_bytes(B, Key("reports", "b-only.pdf"), b"B")
    assert store.get_bytes(A, key) == b"factory A"
    assert store.get_bytes(B, key) == b"factory B, longer"
    assert [i.key for i in store.list(A)] == [key]
    assert [(i.key, i.size) for i in store.list(A)] == [(key, len(b"factory A"))]
    assert [i.key for i in store.list(B)] == [key, Key("reports", "b-only.pdf")]
    assert not store.exists(A, Key("reports", "b-only.pdf"))
    with pytest.raises(ObjectNotFound):
        store.get_bytes(A, Key("reports", "b-only.pdf"))
    store.delete(A, key)
    assert store.get_bytes(B, key) == b"factory B, longer"
    assert store.uri(A, key) != store.uri(B, key)
    assert f"/{A.factory_id}/analytics/datasets/ds-1/data.parquet" in store.uri(A, key)


def test_put_if_absent_writes_once(store: ObjectStore) -> None:
    key = Key("analytics", "datasets", "ds-1", "manifest.json")
    assert store.put_if_absent(A, key, b"first") is True
    assert store.put_if_absent(A, key, b"second") is False
    assert store.get_bytes(A, key) == b"first"
    assert store.put_if_absent(B, key, b"other factory") is True  # a different object
    store.delete(A, key)
    assert store.put_if_absent(A, key, b"third") is True
    assert store.get_bytes(A, key) == b"third"


def test_put_if_absent_has_one_winner_among_racing_writers(store: ObjectStore) -> None:
    key = Key("analytics", "datasets", "ds-race", "manifest.json")
    writers = 6
    barrier = threading.Barrier(writers)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            results[i] = store.put_if_absent(A, key, f"writer {i}".encode())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    winners = [i for i, won in results.items() if won]
    assert len(results) == writers and len(winners) == 1, results
    assert store.get_bytes(A, key) == f"writer {winners[0]}".encode()


def test_big_file_is_streamed_both_ways(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    block = os.urandom(MB)
    with source.open("wb") as f:
        for i in range(20):
            f.write(bytes([i]) + block[1:])  # 20 MB, every MB different
    expected = file_sha(source)
    key = Key("analytics", "datasets", "ds-big", "data.parquet")

    tracemalloc.start()
    try:
        info = store.put_file(A, key, source)
        _, peak_put = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.size, info.sha256) == (20 * MB, expected)
    assert store.stat(A, key).size == 20 * MB
    # Measured: about 2 MB (local) and 6 MB (S3, parts of 8 MB in flight); reading it whole would be 20.
    assert peak_put < 16 * MB, f"put_file held {peak_put / MB:.1f} MB of a 20 MB file: it should stream"
    if isinstance(store, S3ObjectStore):
        assert "-" in (info.etag or ""), "a 20 MB file should go up as a multipart upload"

    target = tmp_path / "out" / "copy.bin"
    target.parent.mkdir()
    store.download_to(A, key, target)
    assert file_sha(target) == expected
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.bin"]  # no temporary file left

    digest = hashlib.sha256()
    sizes = []
    for chunk in store.iter_chunks(A, key, chunk_size=MB):
        digest.update(chunk)
        sizes.append(len(chunk))
    assert digest.hexdigest() == expected
    assert sum(sizes) == 20 * MB and max(sizes) <= MB and len(sizes) >= 20


def test_iter_chunks_can_be_closed_early(store: ObjectStore) -> None:
    key = Key("reports", "r.pdf")
    store.put_bytes(A, key, b"x" * 10_000)
    chunks = store.iter_chunks(A, key, chunk_size=1000)
    assert next(chunks) == b"x" * 1000
    chunks.close()  # type: ignore[attr-defined]
    assert list(chunks) == []
    assert store.get_bytes(A, key) == b"x" * 10_000
    with pytest.raises(ValueError):
        store.iter_chunks(A, key, chunk_size=0)


def test_put_file_of_a_missing_source_writes_nothing(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file(A, Key("x.bin"), tmp_path / "does-not-exist.bin")
    assert store.list(A) == []


def test_ping_of_a_working_store(store: ObjectStore) -> None:
    store.ping()
    store.ping()


# -- failures ------------------------------------------------------------------------------------


def test_unreachable_s3_fails_fast_with_unavailable(closed_port: int) -> None:
    store = s3_store(f"http://127.0.0.1:{closed_port}", bucket="factoryops")
    for call in (
        store.ping,
        lambda: store.put_bytes(A, Key("x"), b"1"),
        lambda: store.get_bytes(A, Key("x")),
        lambda: store.list(A),
    ):
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnavailable, match=f"127.0.0.1:{closed_port}"):
            call()
        assert time.monotonic() - started < 10, "an unreachable store must be reported within seconds"


def test_ping_of_a_hung_s3_fails_within_its_timeout() -> None:
    """A server that accepts connections but never answers (overloaded, half-dead) is unavailable too."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever reads the request
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = S3ObjectStore(url, "factoryops", ACCESS_KEY, SECRET_KEY, REGION, ping_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnavailable, match="cannot be reached"):
            store.ping()
        assert time.monotonic() - started < 5


def test_s3_goes_down_and_comes_back(moto: MotoServer) -> None:
    store = s3_store(moto.url)
    store.put_bytes(A, Key("before"), b"1")
    with moto.stopped():
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnavailable):
            store.ping()
        with pytest.raises(ObjectStoreUnavailable):
            store.put_bytes(A, Key("during"), b"2")
        with pytest.raises(ObjectStoreUnavailable):
            store.get_bytes(A, Key("before"))
        assert time.monotonic() - started < 20
    # moto comes back empty: the adapter recreates its bucket instead of failing on it.
    store.ping()
    assert store.put_bytes(A, Key("after"), b"3").size == 1
    assert store.get_bytes(A, Key("after")) == b"3"


def test_local_ping_fails_on_an_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    store = LocalObjectStore(blocker / "objects")  # a folder cannot be made inside a file
    with pytest.raises(ObjectStoreUnavailable, match="cannot be written"):
        store.ping()
    LocalObjectStore(tmp_path / "new" / "objects").ping()


# -- the local adapter's own guarantees ----------------------------------------------------------


def test_local_layout_and_no_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    key = Key("analytics", "runs", "r1", "model.joblib")
    store.put_bytes(A, key, b"model")
    assert (root / A.factory_id / "analytics" / "runs" / "r1" / "model.joblib").read_bytes() == b"model"
    assert store.uri(A, key) == (root / A.factory_id / "analytics/runs/r1/model.joblib").as_uri()
    assert store.put_if_absent(A, key, b"other") is False
    assert os.listdir(root / A.factory_id / "analytics" / "runs" / "r1") == ["model.joblib"]
    # A writer that died mid-write leaves a temporary file: it is never listed as an object.
    (root / A.factory_id / "analytics" / "runs" / "r1" / ".~model.joblib.dead").write_bytes(b"par")
    assert [i.key for i in store.list(A)] == [key]


def test_local_refuses_symlink_escapes(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not yours")
    store = LocalObjectStore(root)
    store.put_bytes(A, Key("reports", "ok.pdf"), b"ok")
    (root / A.factory_id / "analytics").symlink_to(outside, target_is_directory=True)
    (root / A.factory_id / "reports" / "link.txt").symlink_to(outside / "secret.txt")
    # B's folder pointing at A's: still refused, a factory never reaches another through a link.
    (root / B.factory_id).symlink_to(root / A.factory_id, target_is_directory=True)

    with pytest.raises(ObjectStoreError, match="symbolic link"):
        store.put_bytes(A, Key("analytics", "evil.txt"), b"x")
    with pytest.raises(ObjectStoreError):
        store.get_bytes(A, Key("analytics", "secret.txt"))
    with pytest.raises(ObjectStoreError):
        store.get_bytes(A, Key("reports", "link.txt"))
    with pytest.raises(ObjectStoreError):
        store.list(B)
    with pytest.raises(ObjectStoreError):
        store.get_bytes(B, Key("reports", "ok.pdf"))
    assert [i.key for i in store.list(A)] == [Key("reports", "ok.pdf")]  # links are not objects
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# -- wiring ----------------------------------------------------------------------------------------


def test_build_objectstore_from_settings(tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    local = build_objectstore(ObjectStoreSettings(), tmp_path)
    assert isinstance(local, LocalObjectStore) and local.root == (tmp_path / "objects").absolute()

    monkeypatch.setenv("FACTORYOPS_OBJECTSTORE__BACKEND", "s3")
    monkeypatch.setenv("FACTORYOPS_OBJECTSTORE__S3_ENDPOINT", moto.url)
    monkeypatch.setenv("FACTORYOPS_OBJECTSTORE__S3_BUCKET", "wired-bucket")
    monkeypatch.setenv("FACTORYOPS_OBJECTSTORE__S3_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("FACTORYOPS_OBJECTSTORE__S3_SECRET_KEY", SECRET_KEY)
    settings = Settings(_env_file=None)
    remote = build_objectstore(settings.objectstore, settings.data_dir)
    assert isinstance(remote, S3ObjectStore) and remote.bucket == "wired-bucket"
    remote.put_bytes(A, Key("wired"), b"ok")
    assert remote.uri(A, Key("wired")) == f"s3://wired-bucket/{A.factory_id}/wired"
    assert remote.get_bytes(A, Key("wired")) == b"ok"

    with pytest.raises(ValueError, match="S3_ENDPOINT"):
        build_objectstore(ObjectStoreSettings(backend="s3"), tmp_path)
    with pytest.raises(ValueError, match=r"unknown object store backend 'minio'.*local, s3"):
        build_objectstore(ObjectStoreSettings(backend="minio"), tmp_path)
