"""``factoryops doctor``: checks every dependency the settings name and says how to fix what is wrong.

Each check answers ``ok``, ``warn`` (works, but needs a look: points waiting in a spool, InfluxDB
retention that differs from the settings), ``fail`` (the platform cannot work like this) or
``skip`` (not configured, e.g. no SMTP server). Every ``warn`` and ``fail`` carries a ``fix``: what
to do about it. The command exits 0 when nothing failed (``--strict``: and nothing warned), 1
otherwise; ``--json`` prints the same for machines.

The reachability probes are those of ``GET /readyz`` (:func:`factoryops.core.health.check_all`);
the doctor adds what a probe cannot afford on every call: migrations at head, the InfluxDB
database with its retention policies and continuous queries, TLS files, SMTP, the web portal,
disk space and the telemetry spools.
"""

from __future__ import annotations

import argparse
import json
import shutil
import smtplib
import ssl
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from factoryops.core.settings import Environment, Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
DEFAULT_MIN_FREE_GB = 1.0


@dataclass
class Check:
    """One line of the doctor's answer."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _days(n: int) -> timedelta | None:
    return timedelta(days=n) if n > 0 else None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


# ---------------------------------------------------------------------------- settings and TLS
def check_settings(settings: Settings) -> Check:
    if settings.env == Environment.production:
        # The settings themselves refuse a default or short secret in production (they would not load).
        return Check("settings", OK, "production; session secret set (32+ characters)")
    return Check(
        "settings",
        OK,
        "development mode (a default session secret is allowed; set FACTORYOPS_ENV=production and "
        "FACTORYOPS_AUTH__JWT_SECRET for a real installation)",
    )


def check_tls(settings: Settings) -> Check:
    from factoryops.core.tls import TlsSetupError, mqtt_client_context, plain_links, server_context

    used = []
    try:
        if server_context(settings.http) is not None:
            used.append("HTTPS certificate and key")
        if mqtt_client_context(settings.mqtt) is not None:
            used.append("MQTT TLS files")
    except TlsSetupError as exc:
        return Check(
            "tls",
            FAIL,
            str(exc),
            "point the setting at a readable PEM file (the key unencrypted and matching its certificate), "
            "or unset it; see docs/tls.md",
        )
    links = plain_links(settings.http, settings.mqtt)
    plain, fixes = [link.what for link in links], [link.fix for link in links]
    if settings.env == Environment.production and plain:
        done = "; " + ", ".join(used) + " readable and valid" if used else ""
        return Check(
            "tls",
            WARN,
            "production without TLS: " + ", ".join(plain) + done,
            "; ".join(fixes) + " (docs/tls.md)",
        )
    elsewhere = [
        *(["TLS ends in front of the API (FACTORYOPS_HTTP__TLS_PROXY)"] if settings.http.tls_proxy else []),
        *(
            ["the broker link is private (FACTORYOPS_MQTT__PRIVATE_NETWORK)"]
            if settings.mqtt.private_network and not settings.mqtt.embedded
            else []
        ),
    ]
    if elsewhere:
        return Check("tls", OK, ", ".join(used + elsewhere))
    if not used:
        return Check("tls", SKIP, "no TLS files configured (plain HTTP and MQTT)")
    return Check("tls", OK, ", ".join(used) + " readable and valid")


# ---------------------------------------------------------------------------- metadata database
def _sqlite_file(settings: Settings) -> Path | None:
    url = settings.database_url
    if not url.startswith("sqlite:///") or url in ("sqlite://", "sqlite:///:memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def check_migrations(db: Any) -> Check:
    from alembic.script import ScriptDirectory

    from factoryops.core.migrate import alembic_config, current

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    try:
        revision = current(db.engine)
    except Exception as exc:  # the reachability check reports the connection itself
        return Check("migrations", FAIL, f"cannot read the schema revision: {type(exc).__name__}: {exc}"[:300])
    if revision == head:
        return Check("migrations", OK, f"schema at head ({head})")
    if revision is None:
        return Check(
            "migrations",
            FAIL,
            "the database has no FactoryOps schema (never migrated)",
            "run `factoryops migrate` (or start `factoryops up` / `factoryops api`, which migrate)",
        )
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        return Check(
            "migrations",
            FAIL,
            f"the database is at revision {revision}, which this FactoryOps version does not know "
            f"(its newest is {head}): a newer version migrated it",
            "run the FactoryOps version that migrated this database (or newer); never downgrade over it",
        )
    return Check(
        "migrations",
        FAIL,
        f"the database is at revision {revision}; this version needs {head}",
        "back up the database, then run `factoryops migrate` (docs/operations.md, Upgrades)",
    )


# ---------------------------------------------------------------------------- InfluxDB schema
def check_influx_schema(settings: Settings) -> Check:
    """The database, its retention policies and the continuous queries the InfluxDB adapter creates."""
    from factoryops.ports.timeseries.base import Resolution
    from factoryops.ports.timeseries.influx import (
        CQ_HOUR,
        CQ_MINUTE,
        ROLLUP_RPS,
        RP_RAW,
        RP_SETTINGS,
        parse_go_duration,
        quote_ident,
    )

    ts = settings.timeseries
    auth = (
        (ts.influx_username, ts.influx_password.get_secret_value() if ts.influx_password else "")
        if ts.influx_username
        else None
    )
    first_start = (
        "start the telemetry service (`factoryops telemetry` or `factoryops up`) once with this "
        "setting: it creates the database, its retention policies and continuous queries"
    )

    def show(statement: str, db: str | None = None) -> list[dict[str, Any]]:
        params = {"q": statement, **({"db": db} if db else {})}
        r = httpx.get(ts.influx_url.rstrip("/") + "/query", params=params, auth=auth, timeout=5)
        if r.status_code in (401, 403):
            raise PermissionError(f"InfluxDB refused the credentials (HTTP {r.status_code})")
        r.raise_for_status()
        body = r.json()
        results = body.get("results", [])
        for result in results:
            if "error" in result:
                raise RuntimeError(result["error"])
        return [series for result in results for series in result.get("series", [])]

    try:
        databases = {row[0] for s in show("SHOW DATABASES") for row in s.get("values", [])}
        if ts.influx_database not in databases:
            return Check(
                "timeseries schema",
                FAIL,
                f"InfluxDB has no database {ts.influx_database!r}",
                first_start + f"; or create it: influx -execute 'CREATE DATABASE {ts.influx_database}'",
            )
        policies: dict[str, timedelta | None] = {}
        for series in show(f"SHOW RETENTION POLICIES ON {quote_ident(ts.influx_database)}"):
            columns = series["columns"]
            for row in series.get("values", []):
                item = dict(zip(columns, row, strict=False))
                policies[item["name"]] = parse_go_duration(item["duration"])
        queries: set[str] = set()
        for series in show("SHOW CONTINUOUS QUERIES"):
            if series.get("name") == ts.influx_database:
                queries.update(row[0] for row in series.get("values", []))
    except Exception as exc:
        return Check(
            "timeseries schema",
            FAIL,
            f"cannot read the schema of InfluxDB at {ts.influx_url}: {type(exc).__name__}: {exc}"[:300],
            "check FACTORYOPS_TIMESERIES__INFLUX_URL, __INFLUX_USERNAME and __INFLUX_PASSWORD "
            "(the user needs admin rights to show retention policies and continuous queries)",
        )
    wanted_rps = [RP_RAW, *ROLLUP_RPS.values(), RP_SETTINGS]
    missing = [name for name in wanted_rps if name not in policies]
    missing_cqs = [name for name in (CQ_MINUTE, CQ_HOUR) if name not in queries]
    if missing or missing_cqs:
        what = []
        if missing:
            what.append("retention policies " + ", ".join(missing))
        if missing_cqs:
            what.append("continuous queries " + ", ".join(missing_cqs))
        return Check(
            "timeseries schema", FAIL, f"database {ts.influx_database!r} lacks " + "; ".join(what), first_start
        )
    configured = {
        RP_RAW: _days(ts.raw_retention_days),
        ROLLUP_RPS[Resolution.MINUTE]: _days(ts.rollup_1m_retention_days),
        ROLLUP_RPS[Resolution.HOUR]: _days(ts.rollup_1h_retention_days),
    }

    def kept(d: timedelta | None) -> str:
        return "forever" if d is None else f"{d.days}d"

    differ = [
        f"{name} keeps {kept(policies[name])}, settings say {kept(want)}"
        for name, want in configured.items()
        if policies[name] != want
    ]
    detail = (
        f"database {ts.influx_database!r}: retention "
        + ", ".join(f"{name} {kept(policies[name])}" for name in configured)
        + "; rollup continuous queries present"
    )
    if differ:
        return Check(
            "timeseries schema",
            WARN,
            detail + "; " + "; ".join(differ),
            "restart the telemetry service: it applies the retention of the settings on start",
        )
    return Check("timeseries schema", OK, detail)


# ---------------------------------------------------------------------------- SMTP, web, disk, spool
def check_smtp(settings: Settings) -> Check:
    n = settings.notifications
    if not n.smtp_host:
        return Check("smtp", SKIP, "not configured: email notifications are off (FACTORYOPS_NOTIFICATIONS__SMTP_HOST)")
    where = f"{n.smtp_host}:{n.smtp_port}"
    try:
        smtp: smtplib.SMTP
        timeout = min(n.timeout_seconds, 10.0)
        if n.smtp_ssl:
            smtp = smtplib.SMTP_SSL(n.smtp_host, n.smtp_port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if n.smtp_starttls and not n.smtp_ssl:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if n.smtp_username:
                smtp.login(n.smtp_username, n.smtp_password.get_secret_value() if n.smtp_password else "")
            code, _ = smtp.noop()
            if code != 250:
                raise smtplib.SMTPException(f"NOOP answered {code}")
    except smtplib.SMTPAuthenticationError as exc:
        return Check(
            "smtp",
            FAIL,
            f"{where} refused the login of {n.smtp_username!r}: {exc.smtp_code}",
            "check FACTORYOPS_NOTIFICATIONS__SMTP_USERNAME and __SMTP_PASSWORD",
        )
    except (OSError, smtplib.SMTPException) as exc:
        return Check(
            "smtp",
            FAIL,
            f"cannot talk to the SMTP server at {where}: {type(exc).__name__}: {exc}"[:300],
            "check FACTORYOPS_NOTIFICATIONS__SMTP_HOST/__SMTP_PORT and that the server accepts connections "
            "from this machine (port 587 with __SMTP_STARTTLS=true, 465 with __SMTP_SSL=true)",
        )
    return Check("smtp", OK, f"{where} answers" + (" (signed in)" if n.smtp_username else ""))


def check_web(settings: Settings) -> Check:
    # The API serves the portal from here (lazy import: the API module loads every domain).
    from factoryops.entrypoints.api import WEB_DIR

    folder = (settings.web_dir or WEB_DIR).resolve()
    if (folder / "index.html").is_file():
        return Check("web portal", OK, f"built in {folder}")
    return Check(
        "web portal",
        FAIL,
        f"no built web portal in {folder} (index.html missing)",
        "run `bash scripts/install.sh` (or `cd web && npm ci && npm run build`); "
        "or set FACTORYOPS_WEB_DIR to the built portal",
    )


def check_data_dir(settings: Settings, min_free_bytes: int) -> Check:
    folder = settings.data_dir.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check(
            "data folder",
            FAIL,
            f"{folder} is not writable: {exc.strerror or exc}",
            "give the user running FactoryOps write access to it, or set FACTORYOPS_DATA_DIR",
        )
    usage = shutil.disk_usage(folder)
    detail = f"{folder} writable; {_human_bytes(usage.free)} free of {_human_bytes(usage.total)}"
    if usage.free < min_free_bytes:
        return Check(
            "data folder",
            FAIL,
            detail + f" (less than {_human_bytes(min_free_bytes)})",
            "free disk space (old backups, logs) or move FACTORYOPS_DATA_DIR to a bigger disk: the spool, "
            "the embedded stores and exports need room",
        )
    return Check("data folder", OK, detail)


def check_spools(settings: Settings) -> Check:
    folder = settings.data_dir / "spool"
    files = sorted(folder.glob("telemetry-*.db")) if folder.is_dir() else []
    if not files:
        return Check("telemetry spool", OK, "no spool files: nothing waits to be written")
    # The spool's own class counts what waits (it is a domain module; the doctor only reads it).
    from factoryops.telemetry.spool import Spool

    waiting = []
    for path in files:
        spool = Spool(path)
        try:
            if spool.depth:
                waiting.append((path, spool.depth, spool.points))
        finally:
            spool.close()
    if not waiting:
        return Check("telemetry spool", OK, f"{len(files)} spool file(s), all empty")
    detail = "; ".join(f"{p.name}: {points:,} points in {batches:,} batches" for p, batches, points in waiting)
    names = ", ".join(p.stem.removeprefix("telemetry-") for p, _, _ in waiting)
    return Check(
        "telemetry spool",
        WARN,
        "points wait to be written to the time-series store: " + detail,
        "keep (or start) the telemetry service with FACTORYOPS_TELEMETRY_NAME="
        f"{names} running while the time-series store is reachable: it replays its spool in order",
    )


# ---------------------------------------------------------------------------- reachability
_PROBE_FIX = {
    "database": "check FACTORYOPS_DATABASE__URL, that the database server runs and that this user may connect "
    "(MySQL: `mysql -h HOST -u USER -p DB`)",
    "timeseries_influxdb": "check FACTORYOPS_TIMESERIES__INFLUX_URL and that influxd runs "
    "(`systemctl status influxdb`; `curl -i URL/ping` answers 204)",
    "timeseries_embedded": "give the user running FactoryOps write access to the data folder",
    "objectstore_s3": "check FACTORYOPS_OBJECTSTORE__S3_ENDPOINT, __S3_ACCESS_KEY, __S3_SECRET_KEY and __S3_BUCKET, "
    "and that MinIO / S3 runs and answers from this machine",
    "objectstore_local": "give the user running FactoryOps write access to the data folder",
}


def _mqtt_check(settings: Settings, state: dict[str, Any]) -> Check:
    where = f"{settings.mqtt.host}:{settings.mqtt.port}"
    error = str(state.get("error", ""))
    if state["status"] == "ok":
        return Check("mqtt", OK, f"broker at {where} accepted an MQTT connection")
    if "refused the connection (CONNACK code" in error and not settings.mqtt.username:
        # Without a service account the probe connects anonymously; a broker that refuses it answers,
        # which is all a probe without credentials can show (the embedded broker admits devices only).
        return Check("mqtt", OK, f"broker at {where} answers (it refused an anonymous connection, as it should)")
    if "CONNACK code" in error:
        return Check(
            "mqtt",
            FAIL,
            f"broker at {where} refused the platform's account: {error}",
            "check FACTORYOPS_MQTT__USERNAME and FACTORYOPS_MQTT__PASSWORD against the broker's accounts",
        )
    embedded = (
        "with the embedded broker (FACTORYOPS_MQTT__EMBEDDED=true) it runs inside `factoryops up`: start it; "
        if settings.mqtt.embedded
        else ""
    )
    return Check(
        "mqtt",
        FAIL,
        f"cannot reach the MQTT broker at {where}: {error}",
        embedded + "check FACTORYOPS_MQTT__HOST/__PORT (and __TLS) and that the broker (Mosquitto, EMQX) runs "
        "and listens there",
    )


def _probe_check(name: str, kind: str, state: dict[str, Any], ok_detail: str) -> Check:
    if state["status"] == "ok":
        return Check(name, OK, ok_detail)
    return Check(name, FAIL, f"{state.get('error', 'unreachable')}", _PROBE_FIX[kind])


# ---------------------------------------------------------------------------- the whole run
def run_checks(settings: Settings, min_free_bytes: int = int(DEFAULT_MIN_FREE_GB * 1024**3)) -> list[Check]:
    """Every check, in the order a person would fix them."""
    from factoryops.core.db import Database
    from factoryops.core.health import check_all

    checks = [check_settings(settings), check_tls(settings), check_data_dir(settings, min_free_bytes)]
    sqlite = _sqlite_file(settings)
    missing = sqlite is not None and not sqlite.exists()
    # A missing SQLite file is reported, not created: the probe opens it read-only, so it fails.
    url = f"sqlite:///file:{sqlite}?mode=ro&uri=true" if missing else settings.database_url
    db = Database(url, pool_size=1)
    try:
        probes = check_all(settings, db)
        if missing:
            checks.append(
                Check(
                    "database",
                    FAIL,
                    f"no SQLite database at {sqlite}",
                    "run `factoryops migrate` (or `factoryops up`) to create it, or set FACTORYOPS_DATABASE__URL",
                )
            )
        else:
            checks.append(
                _probe_check("database", "database", probes["database"], f"{db.engine.dialect.name} reachable")
            )
            if probes["database"]["status"] == "ok":
                checks.append(check_migrations(db))
        backend = settings.timeseries.backend
        if backend == "influxdb":
            ts = probes["timeseries"]
            checks.append(_probe_check("timeseries", "timeseries_influxdb", ts, f"InfluxDB at {ts.get('detail')}"))
            if ts["status"] == "ok":
                checks.append(check_influx_schema(settings))
        else:
            checks.append(
                _probe_check(
                    "timeseries",
                    "timeseries_embedded",
                    probes["timeseries"],
                    f"embedded in {probes['timeseries'].get('detail')}",
                )
            )
        checks.append(_mqtt_check(settings, probes["mqtt"]))
        store = probes["objectstore"]
        if settings.objectstore.backend == "s3":
            detail = f"S3 at {store.get('detail')}, bucket {settings.objectstore.s3_bucket!r} reachable"
            checks.append(_probe_check("object store", "objectstore_s3", store, detail))
        else:
            checks.append(
                _probe_check("object store", "objectstore_local", store, f"local folder {store.get('detail')}")
            )
    finally:
        db.dispose()
    checks += [check_smtp(settings), check_web(settings), check_spools(settings)]
    return checks


def exit_code(checks: list[Check], strict: bool = False) -> int:
    bad = {FAIL, WARN} if strict else {FAIL}
    return 1 if any(c.status in bad for c in checks) else 0


def render_text(checks: list[Check], settings: Settings | None = None) -> str:
    lines = []
    if settings is not None:
        lines.append(f"FactoryOps doctor ({settings.env.value}, data folder {settings.data_dir.resolve()})")
    width = max(len(c.name) for c in checks)
    for c in checks:
        lines.append(f"  {c.status.upper():<5} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status in (FAIL, WARN):
            lines.append(f"        {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if failed or warned:
        lines.append(f"{failed} problem(s), {warned} warning(s).")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines) + "\n"


def cmd_doctor(args: argparse.Namespace) -> int:
    settings: Settings | None
    try:
        settings = Settings()
    except ValidationError as exc:
        checks = [
            Check(
                "settings",
                FAIL,
                "; ".join(str(err["msg"]) for err in exc.errors()),
                "fix the FACTORYOPS_* environment variables or the .env file (`factoryops config --reference` "
                "lists them); the other checks need valid settings",
            )
        ]
        settings = None
    else:
        checks = run_checks(settings, int(args.min_free_gb * 1024**3))
    code = exit_code(checks, strict=args.strict)
    if args.json:
        print(json.dumps({"ok": code == 0, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        sys.stdout.write(render_text(checks, settings))
    return code


def register(sub: Any) -> None:
    """Adds ``doctor`` to the CLI's subcommands."""
    doctor = sub.add_parser("doctor", help="check every dependency the settings name and say how to fix problems")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    doctor.add_argument(
        "--min-free-gb",
        type=float,
        default=DEFAULT_MIN_FREE_GB,
        help=f"fail when the data folder's disk has less free space (default {DEFAULT_MIN_FREE_GB} GB)",
    )
    doctor.set_defaults(func=cmd_doctor)
