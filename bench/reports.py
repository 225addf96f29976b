"""Benchmark: a monthly report of a factory of 1,000 devices with 10 properties each.

Issue 6 item 6: the report must build in under a minute and under 1 GB of memory. Reports read
hourly window statistics (the 1-hour rollups), so the history here is written as the rollups the
continuous queries of InfluxDB produce from 1-minute data (``device_metrics_1h``: count 60, sum,
min, max per hour and series) for last month and the month before (the comparison period): 1,000
devices x 10 properties x ~1,500 hours, about 15 million rows, written straight into a throwaway
InfluxDB (not timed). Writing the 1-minute raw points themselves (900 million) is beyond this
machine's setup time; the report never reads them unless a counter was reset.

The report (energy from each device's kWh counter, statistics of three chosen properties, alerts,
analytics) is generated in a child process exactly as the worker generates it, once as PDF and
once as Excel. Printed: wall time, peak RSS, file size.

    .venv/bin/python bench/reports.py [--devices 1000]
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

CHOSEN = ["power_kw", "voltage_l1", "current_l1"]


def _generate(settings_json: str, factory_id: str, report_id: str, out: Any) -> None:
    from factoryops.core.settings import Settings
    from factoryops.reports.service import ReportService
    from factoryops.wiring import build_platform

    settings = Settings.model_validate_json(settings_json)
    platform = build_platform(settings, migrate=False)
    service = ReportService(platform.db, platform.timeseries, platform.objects, settings.notifications)
    began = time.monotonic()
    result = service.generate(JobCtx(factory_id, {"report_id": report_id}))  # type: ignore[arg-type]
    out.send(
        {
            "seconds": time.monotonic() - began,
            "bytes": result["bytes"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()

    from sqlalchemy import update

    from factoryops.core.settings import Settings
    from factoryops.devices.inference import infer_unit
    from factoryops.devices.models import Property
    from factoryops.jobs.queue import JobQueue
    from factoryops.ports.timeseries.base import FactoryScope, Point
    from factoryops.reports.models import ReportSettings
    from factoryops.reports.service import ReportService, resolve_params
    from factoryops.wiring import build_platform

    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp_name:
        tmp = Path(tmp_name)
        with influxdb(tmp / "influx") as influx:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                data_dir=tmp / "data",
                database={"url": f"sqlite:///{tmp / 'meta.db'}"},
                auth={"bcrypt_rounds": 4, "jwt_secret": "b" * 40},
                timeseries={
                    "backend": "influxdb",
                    "influx_url": influx.url,
                    "raw_retention_days": 100,
                    "rollup_1m_retention_days": 100,
                },
            )
            platform = build_platform(settings)
            factory = create_factory(platform, args.devices, properties_for=args.devices)
            devices = factory.device_ids
            with platform.db.factory_session(factory.id) as s:
                for name in METRICS:
                    s.execute(update(Property).where(Property.name == name).values(unit=infer_unit(name)))
                s.add(
                    ReportSettings(
                        currency="EUR", tariff={"kind": "flat", "flat_price": 0.21}, emission_factor_kg_per_kwh=0.38
                    )
                )
            now = datetime.now(UTC)
            with platform.db.factory_session(factory.id) as s:
                params = resolve_params(s, factory.id, {"preset": "last_month", "properties": CHOSEN}, now)
            start = datetime.fromisoformat(params["start"])
            end = datetime.fromisoformat(params["end"])
            first = (start - (end - start) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
            hours = int((end - first) / timedelta(hours=1))
            assert platform.timeseries is not None
            platform.timeseries.write(FactoryScope(factory.id), [Point(devices[0], "seq", first, 0.0)])
            print(
                f"writing {len(devices) * len(METRICS) * hours:,} hourly rollup rows "
                f"({params['label']} and the month before) ...",
                flush=True,
            )
            began = time.monotonic()
            first_ns = int(first.timestamp()) * 1_000_000_000
            hour_ns = 3600 * 1_000_000_000

            def write_device(i: int) -> int:
                device = devices[i]
                lines = []
                for j, metric in enumerate(METRICS):
                    for h in range(hours):
                        if metric == "energy_kwh":
                            rate = 20.0 + (i % 13)
                            low, high = 1000.0 + h * rate, 1000.0 + (h + 1) * rate - rate / 60
                            total = (low + high) / 2 * 60
                        else:
                            base = 10.0 * (j + 1) + (i % 7) + (h % 24) * 0.5
                            low, high, total = base - 1.0, base + 1.0, base * 60
                        lines.append(
                            f"device_metrics_1h,device_id={device},factory_id={factory.id},property_name={metric} "
                            f"count=60i,sum={total!r},min={low!r},max={high!r} {first_ns + h * hour_ns}"
                        )
                with httpx.Client(timeout=120) as http:
                    for b in range(0, len(lines), 5000):
                        r = http.post(
                            f"{influx.url}/write",
                            params={"db": "factoryops", "rp": "rollup_1h", "precision": "ns"},
                            content="\n".join(lines[b : b + 5000]).encode(),
                        )
                        r.raise_for_status()
                return len(lines)

            with ThreadPoolExecutor(4) as pool:
                written = sum(pool.map(write_device, range(len(devices))))
            print(f"  {written:,} rows in {time.monotonic() - began:.0f} s", flush=True)

            rows = []
            for fmt in ("pdf", "xlsx"):
                with platform.db.factory_session(factory.id) as s:
                    report = ReportService(
                        platform.db, platform.timeseries, platform.objects, settings.notifications
                    ).request(s, JobQueue(platform.db), f"Monthly energy report ({fmt})", fmt, params, "bench")
                    report_id = report.id
                print(f"generating the {fmt.upper()} report (child process, as the worker does) ...", flush=True)
                ctx = multiprocessing.get_context("spawn")
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_generate, args=(settings.model_dump_json(), factory.id, report_id, child))
                proc.start()
                figures = parent.recv()
                proc.join()
                rows.append(
                    (
                        fmt.upper(),
                        f"{figures['seconds']:.1f} s",
                        f"{figures['peak_rss_mb']:,.0f} MB",
                        f"{figures['bytes'] / 1e6:,.2f} MB",
                    )
                )
            print()
            print(
                f"{len(devices):,} devices x {len(METRICS)} properties, {params['label']}; "
                f"energy of every device, statistics of {', '.join(CHOSEN)}"
            )
            print(table(rows, header=("format", "build time (target < 60 s)", "peak RSS (target < 1 GB)", "file")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
