"""A factory's telemetry retention: as long as the platform keeps data, or shorter, never longer (spec 11).

The platform keeps raw points, 1-minute and 1-hour rollups for at most
``FACTORYOPS_TIMESERIES__{RAW,ROLLUP_1M,ROLLUP_1H}_RETENTION_DAYS`` days (0: forever), and the
time-series store enforces that itself. A factory's super admin can shorten each of the three for
their factory; the setting lives in the metadata database (``telemetry_retention``), which is its
one source of truth. Three things act on it:

- the API checks a new setting: at least a day, at most the platform's maximum, raw <= 1-minute <=
  1-hour (:func:`check`);
- the time-series store gets a copy (``configure_retention``), so that every process drops points
  written older than the factory keeps raw data and plans charts over expired raw data from the
  rollups. The API hands it over on a change, the sweep again whenever the copy differs;
- the sweep (:class:`RetentionSweep`, one of the workers' periodic duties) deletes what each factory
  no longer keeps, resolution by resolution, with the store's ``delete_before``. A factory is claimed
  by one worker with a conditional update, at most once per ``every`` (an hour); a change of the
  setting makes it due at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.core.settings import TimeseriesSettings
from factoryops.ports.timeseries.base import (
    ALL_FACTORIES,
    FactoryScope,
    Resolution,
    Retention,
    TimeseriesError,
    TimeseriesStore,
)
from factoryops.telemetry.models import TelemetryRetention
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

# Days per resolution; None: forever (the platform's) or "as long as the platform" (a factory's own).
Days = Mapping[Resolution, int | None]

FIELDS = {Resolution.RAW: "raw_days", Resolution.MINUTE: "rollup_1m_days", Resolution.HOUR: "rollup_1h_days"}
NAMES = {Resolution.RAW: "raw points", Resolution.MINUTE: "1-minute rollups", Resolution.HOUR: "1-hour rollups"}
PLATFORM_SETTINGS = {
    Resolution.RAW: "FACTORYOPS_TIMESERIES__RAW_RETENTION_DAYS",
    Resolution.MINUTE: "FACTORYOPS_TIMESERIES__ROLLUP_1M_RETENTION_DAYS",
    Resolution.HOUR: "FACTORYOPS_TIMESERIES__ROLLUP_1H_RETENTION_DAYS",
}
FOLLOW_PLATFORM: Days = dict.fromkeys(Resolution)


def platform_days(settings: TimeseriesSettings) -> dict[Resolution, int | None]:
    """The platform's maximum per resolution (the settings; 0 there means forever, None here)."""
    values = (settings.raw_retention_days, settings.rollup_1m_retention_days, settings.rollup_1h_retention_days)
    return {r: (n if n > 0 else None) for r, n in zip(Resolution, values, strict=True)}


def own_days(row: TelemetryRetention | None) -> dict[Resolution, int | None]:
    if row is None:
        return dict(FOLLOW_PLATFORM)
    return {Resolution.RAW: row.raw_days, Resolution.MINUTE: row.rollup_1m_days, Resolution.HOUR: row.rollup_1h_days}


def effective_days(own: Days, platform: Days) -> dict[Resolution, int | None]:
    """What is kept: the factory's own days where it has them, never longer than the platform keeps."""
    out: dict[Resolution, int | None] = {}
    for r in Resolution:
        mine, ceiling = own[r], platform[r]
        out[r] = ceiling if mine is None else (mine if ceiling is None else min(mine, ceiling))
    return out


def _kept(days: int | None) -> str:
    return "forever" if days is None else f"{days} day{'s' if days != 1 else ''}"


def check(own: Days, platform: Days) -> list[dict[str, str]]:
    """Why a factory's own retention cannot be saved, per field (empty: it can); each message reads alone."""
    problems: list[dict[str, str]] = []
    for r in Resolution:
        mine, ceiling = own[r], platform[r]
        if mine is not None and mine < 1:
            problems.append({"field": f"body.{FIELDS[r]}", "message": "keep data at least 1 day, or leave it empty"})
        elif mine is not None and ceiling is not None and mine > ceiling:
            problems.append(
                {
                    "field": f"body.{FIELDS[r]}",
                    "message": f"{NAMES[r]} can be kept at most {_kept(ceiling)} on this platform (its maximum, "
                    f"{PLATFORM_SETTINGS[r]}); enter {ceiling} or fewer, or leave it empty to keep them as long "
                    "as the platform does",
                }
            )
    if problems:
        return problems
    kept = effective_days(own, platform)
    for finer, coarser in ((Resolution.RAW, Resolution.MINUTE), (Resolution.MINUTE, Resolution.HOUR)):
        a, b = kept[finer], kept[coarser]
        if b is not None and (a is None or a > b):
            # Point at the field that was set: it is the one to change.
            blamed = finer if own[finer] is not None else coarser
            problems.append(
                {
                    "field": f"body.{FIELDS[blamed]}",
                    "message": f"{NAMES[finer]} would be kept {_kept(a)} but {NAMES[coarser]} only {_kept(b)}; "
                    f"keep {NAMES[finer]} {_kept(b)} or less, or {NAMES[coarser]} longer "
                    "(raw points <= 1-minute rollups <= 1-hour rollups)",
                }
            )
    return problems


def to_retention(days: Days) -> Retention:
    def span(n: int | None) -> timedelta | None:
        return None if n is None else timedelta(days=n)

    return Retention(
        raw=span(days[Resolution.RAW]), minute=span(days[Resolution.MINUTE]), hour=span(days[Resolution.HOUR])
    )


def load(s: Session) -> TelemetryRetention | None:
    """The factory's row (``s`` is a factory-scoped session), or None: it follows the platform."""
    return s.execute(select(TelemetryRetention)).scalar_one_or_none()


def save(s: Session, own: Days, by: str) -> TelemetryRetention:
    """Store the factory's own retention; it is swept at once (``swept_at`` cleared)."""
    row = load(s)
    if row is None:
        row = TelemetryRetention()
        s.add(row)
    row.raw_days, row.rollup_1m_days, row.rollup_1h_days = (own[r] for r in Resolution)
    row.updated_by = by
    row.updated_at = utcnow()
    row.swept_at = None
    s.flush()
    return row


def store_copy(own: Days, platform: Days) -> Retention | None:
    """What the time-series store is told about the factory (None: it follows the global retention)."""
    kept = effective_days(own, platform)
    return None if kept == dict(platform) else to_retention(kept)


def hand_to_store(store: TimeseriesStore, factory_id: str, own: Days, platform: Days) -> bool:
    """Give the store its copy now; False (logged) when it cannot take it: the next sweep does it."""
    scope = FactoryScope(factory_id)
    want = store_copy(own, platform)
    try:
        if store.retention(scope) != (want or store.retention(ALL_FACTORIES)):
            store.configure_retention(scope, want)
            log.info("time-series store: factory %s now keeps %s", factory_id, describe(effective_days(own, platform)))
        return True
    except (TimeseriesError, ValueError) as exc:
        log.warning(
            "time-series store did not take factory %s's retention yet (%s); the sweep retries", factory_id, exc
        )
        return False


def describe(days: Days) -> str:
    return ", ".join(f"{NAMES[r]} {_kept(days[r])}" for r in Resolution)


class RetentionSweep:
    """Deletes, factory by factory, the telemetry older than the factory's own retention keeps.

    Only factories with their own, shorter retention need it: everything older than the platform's
    retention the store drops itself (InfluxDB's shards; the embedded store's ``apply_retention``,
    which the worker also runs hourly). Each factory is claimed with a conditional update of its
    ``swept_at``, so with several workers one of them sweeps it, at most once per ``every``.
    Deleting twice would be harmless (``delete_before`` is idempotent), only wasted work.
    """

    def __init__(
        self,
        db: Database,
        store: TimeseriesStore | None,
        settings: TimeseriesSettings,
        every: timedelta = timedelta(hours=1),
        poll_seconds: float = 60.0,
        retry_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.every = every
        self.poll_seconds = poll_seconds
        self.retry_after = retry_after
        self._next = 0.0
        self._checked_copies = False

    def maybe_run(self) -> int:
        """Run if ``poll_seconds`` have passed since the last look (called by the worker's loop)."""
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self.poll_seconds
        return self.run()

    def run(self, now: datetime | None = None) -> int:
        """Sweep every factory that is due; returns how many this worker swept."""
        if self.store is None:
            return 0
        now = now or utcnow()
        platform = platform_days(self.settings)
        if not self._checked_copies:
            self._checked_copies = self._forget_stale_copies(self.store)
        due_before = now - self.every
        with self.db.unscoped_session() as s:  # the sweep serves every factory; each is claimed in its own scope
            due = (
                s.execute(
                    select(TelemetryRetention.factory_id).where(
                        or_(TelemetryRetention.swept_at.is_(None), TelemetryRetention.swept_at <= due_before)
                    )
                )
                .scalars()
                .all()
            )
        swept = 0
        for factory_id in due:
            try:
                swept += self._sweep(self.store, factory_id, platform, now)
            except Exception:  # one factory failing must not stop the others
                log.exception("retention sweep of factory %s failed", factory_id)
        return swept

    def _claim(self, factory_id: str, now: datetime) -> dict[Resolution, int | None] | None:
        with self.db.factory_session(factory_id) as s:
            claimed = s.execute(
                update(TelemetryRetention)
                .where(or_(TelemetryRetention.swept_at.is_(None), TelemetryRetention.swept_at <= now - self.every))
                .values(swept_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker took it, or the setting is gone
            return own_days(load(s))

    def _sweep(self, store: TimeseriesStore, factory_id: str, platform: Days, now: datetime) -> int:
        own = self._claim(factory_id, now)
        if own is None:
            return 0
        scope = FactoryScope(factory_id)
        kept = effective_days(own, platform)
        done: list[str] = []
        try:
            if not hand_to_store(store, factory_id, own, platform):
                raise TimeseriesError("the store did not take the factory's retention")
            for r in Resolution:  # raw first: deleting it folds late points into the rollups
                days = kept[r]
                if days is None or days == platform[r]:
                    continue  # the platform's own retention, which the store enforces itself
                cutoff = now - timedelta(days=days)
                deleted = store.delete_before(scope, r, cutoff)
                counted = "uncounted" if deleted is None else str(deleted)
                done.append(f"{NAMES[r]} before {cutoff:%Y-%m-%d %H:%M} UTC ({counted})")
        except TimeseriesError as exc:
            log.warning("retention sweep of factory %s failed (%s); retrying in %s", factory_id, exc, self.retry_after)
            with self.db.factory_session(factory_id) as s:  # due again after retry_after
                s.execute(
                    update(TelemetryRetention)
                    .values(swept_at=now - self.every + self.retry_after)
                    .execution_options(synchronize_session=False)
                )
            return 0
        if done:
            log.info("retention of factory %s (%s): deleted %s", factory_id, describe(kept), "; ".join(done))
        return 1

    def _forget_stale_copies(self, store: TimeseriesStore) -> bool:
        """Factories without a row follow the platform: drop any older copy the store still holds.

        Before the setting moved to the metadata database it lived in the store alone; such a copy
        would keep dropping writes that the portal says are kept. Once per process (True: done).
        """
        try:
            with self.db.unscoped_session() as s:  # platform-wide: which factories have no setting
                own = set(s.execute(select(TelemetryRetention.factory_id)).scalars())
                others = [f for f in s.execute(select(Factory.id)).scalars() if f not in own]
            glob = store.retention(ALL_FACTORIES)
            for factory_id in others:
                scope = FactoryScope(factory_id)
                if store.retention(scope) != glob:
                    store.configure_retention(scope, None)
                    log.warning(
                        "factory %s had a retention in the time-series store only, not in the metadata database; "
                        "it follows the platform's again",
                        factory_id,
                    )
        except TimeseriesError as exc:
            log.warning("could not check the time-series store's retention copies (%s); next time", exc)
            return False
        return True
