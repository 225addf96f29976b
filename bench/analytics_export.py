"""Benchmark: export a month of 15-minute data of 1,000 devices x 10 properties into a dataset.

Issue 5 item 9: about 29 million values must stream into one immutable Parquet snapshot in under
2 minutes and under 2 GB of memory. The history is written straight into a throwaway InfluxDB
(line protocol, 5,000 lines per request; not timed), the registry into SQLite, and the export runs
in a child process exactly as the worker runs it (``DatasetService.run_export``), writing to a moto
S3 server. Printed: values, wall time, values/s, the child's peak RSS, the file's size.

    .venv/bin/python bench/analytics_export.py [--devices 1000] [--days 31]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import METRICS, JobCtx, create_factory, influxdb, table

STEP = timedelta(minutes=15)


def _export_child(settings_json: str, factory_id: str, dataset_id: str, out: Any) -> None:
    from factoryops.analytics.datasets import DatasetService
    from factoryops.core.settings import Settings
    from factoryops.wiring import build_platform

    settings = Settings.model_validate_json(settings_json)
    platform = build_platform(settings, migrate=False)
    service = DatasetService(platform.db, platform.timeseries, platform.objects)
    began = time.monotonic()
    result = service.run_export(JobCtx(factory_id, {"dataset_id": dataset_id}))  # type: ignore[arg-type]
    out.send(
        {
            "seconds": time.monotonic() - began,
            "rows": result["rows"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31)
    args = parser.parse_args()

    from factoryops.analytics.datasets import DatasetService, resolve_request
    from factoryops.core.settings import Settings
    from factoryops.jobs.queue import JobQueue
    from factoryops.ports.timeseries.base import FactoryScope, Point
    from factoryops.wiring import build_platform
    from s3 import ACCESS_KEY, SECRET_KEY, moto_server

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp_name:
        tmp = Path(tmp_name)
        with influxdb(tmp / "influx") as influx, moto_server(tmp / "moto") as moto:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                data_dir=tmp / "data",
                database={"url": f"sqlite:///{tmp / 'meta.db'}"},
                auth={"bcrypt_rounds": 4, "jwt_secret": "b" * 40},
                timeseries={
                    "backend": "influxdb",
                    "influx_url": influx.url,
                    "raw_retention_days": 60,
                    "rollup_1m_retention_days": 60,
                },
                objectstore={
                    "backend": "s3",
                    "s3_endpoint": moto.url,
                    "s3_access_key": ACCESS_KEY,
                    "s3_secret_key": SECRET_KEY,
                },
            )
            platform = build_platform(settings)
            factory = create_factory(platform, args.devices, properties_for=args.devices)
            devices = factory.device_ids
            end = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            start = end - timedelta(days=args.days)
            steps = int((end - start) / STEP)
            assert platform.timeseries is not None
            platform.timeseries.write(FactoryScope(factory.id), [Point(devices[0], METRICS[0], start, 0.0)])
            print(f"writing {len(devices) * len(METRICS) * steps:,} values into InfluxDB ...", flush=True)
            began = time.monotonic()
            start_ns = int(start.timestamp()) * 1_000_000_000
            step_ns = int(STEP.total_seconds()) * 1_000_000_000

            def write_device(i: int) -> int:
                device = devices[i]
                lines = [
                    f"device_metrics,device_id={device},factory_id={factory.id},property_name={metric} "
                    f"value={(i % 97) + j * 0.25 + k * 0.001!r} {start_ns + k * step_ns}"
                    for j, metric in enumerate(METRICS)
                    for k in range(steps)
                ]
                with httpx.Client(timeout=120) as http:
                    for b in range(0, len(lines), 5000):
                        r = http.post(
                            f"{influx.url}/write",
                            params={"db": "factoryops", "rp": "raw", "precision": "ns"},
                            content="\n".join(lines[b : b + 5000]).encode(),
                        )
                        r.raise_for_status()
                return len(lines)

            with ThreadPoolExecutor(4) as pool:
                written = sum(pool.map(write_device, range(len(devices))))
            print(f"  {written:,} values in {time.monotonic() - began:.0f} s", flush=True)

            with platform.db.factory_session(factory.id) as s:
                request = resolve_request(s, devices, None, start, end, "raw", "mean")
                dataset, _ = DatasetService(platform.db, platform.timeseries, platform.objects).request(
                    s, JobQueue(platform.db), "bench month", request, "bench"
                )
                dataset_id = dataset.id
            print("exporting (child process, as the worker does) ...", flush=True)
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_export_child, args=(settings.model_dump_json(), factory.id, dataset_id, child))
            proc.start()
            figures = parent.recv()
            proc.join()
            from factoryops.analytics.models import Dataset

            with platform.db.factory_session(factory.id) as s:
                row = s.get(Dataset, dataset_id)
                assert row is not None
                size_mb = row.size_bytes / 1e6
                state = row.state
            print()
            print(
                table(
                    [
                        ("devices x properties x steps", f"{len(devices):,} x {len(METRICS)} x {steps:,}"),
                        ("values exported", f"{figures['rows']:,} (written {written:,})"),
                        ("dataset state", state),
                        ("export wall time", f"{figures['seconds']:.1f} s (target < 120 s)"),
                        ("values per second", f"{figures['rows'] / figures['seconds']:,.0f}"),
                        ("peak RSS of the exporting process", f"{figures['peak_rss_mb']:,.0f} MB (target < 2,048 MB)"),
                        ("Parquet snapshot", f"{size_mb:,.1f} MB"),
                    ],
                    header=("figure", "value"),
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
