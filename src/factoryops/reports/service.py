"""Report generation as jobs, storage in the object store, schedules that email the file.

A report request is a row and a job of kind ``reports.generate``. The worker builds the content
(:mod:`factoryops.reports.content`), renders it (:mod:`factoryops.reports.render`), and stores the
file under ``{factory_id}/reports/{report_id}/{name}-{sha256 prefix}.{ext}`` with its content
hash in the row. A report of a schedule is then emailed to the schedule's recipients with the
file attached. Failures are retried by the jobs queue; after the last attempt the report is
``failed`` with the reason and can be retried.

Schedules: a sweep in every worker process looks for schedules that are due (daily, weekly,
monthly, in the factory's time zone, an hour after the period ends so late data is in), claims
each with a conditional update of ``next_run_at`` (two workers never both run one), and requests
the report of the period that just ended.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from factoryops.core.db import Database, utcnow
from factoryops.core.errors import ApiError, not_found
from factoryops.core.settings import NotificationSettings
from factoryops.core.text import printable
from factoryops.jobs.models import Job, JobState
from factoryops.jobs.queue import JobQueue
from factoryops.jobs.worker import Handler, JobCancelled, JobContext, PermanentJobError
from factoryops.notifications import system_alerts
from factoryops.notifications.channels import send_email
from factoryops.ports.objectstore.base import Key, ObjectStore
from factoryops.ports.timeseries.base import FactoryScope, TimeseriesStore
from factoryops.reports.content import SECTIONS, ContentBuilder, ReportParams, Settings
from factoryops.reports.models import Report, ReportSchedule, ReportSettings
from factoryops.tenancy.models import Factory

log = logging.getLogger(__name__)

GENERATE_KIND = "reports.generate"
FORMATS: dict[str, tuple[str, str]] = {
    "pdf": ("application/pdf", "pdf"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "json": ("application/json", "json"),
}
PRESETS = ("yesterday", "last_7_days", "last_week", "this_month", "last_month", "custom")
CADENCES = {"daily": "yesterday", "weekly": "last_week", "monthly": "last_month"}
GRACE = timedelta(hours=1)  # a scheduled report runs this long after its period ends
ATTACH_LIMIT = 15_000_000  # bytes; bigger files are not attached (the email says where to find them)
MAX_SPAN = timedelta(days=366)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, dtime(), tzinfo=tz)


def period_for(preset: str, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime, str]:
    """(start, end, label) of a preset period in the factory's time zone, as UTC datetimes."""
    local = now.astimezone(tz)
    today = local.date()
    if preset == "yesterday":
        day = today - timedelta(days=1)
        start, end, label = _midnight(day, tz), _midnight(today, tz), day.strftime("%A %d %B %Y")
    elif preset == "last_7_days":
        first = today - timedelta(days=7)
        start, end = _midnight(first, tz), _midnight(today, tz)
        label = f"{first:%d %b} - {today - timedelta(days=1):%d %b %Y}"
    elif preset == "last_week":
        monday = today - timedelta(days=today.weekday())
        first = monday - timedelta(days=7)
        start, end = _midnight(first, tz), _midnight(monday, tz)
        week = first.isocalendar()
        label = f"Week {week.week} of {week.year} ({first:%d %b} - {monday - timedelta(days=1):%d %b})"
    elif preset == "this_month":
        first = today.replace(day=1)
        start = _midnight(first, tz)
        end = local.replace(minute=0, second=0, microsecond=0)
        if end <= start:
            end = start + timedelta(hours=1)
        label = f"{first:%B %Y} (to {local:%d %b %H:00})"
    elif preset == "last_month":
        this_first = today.replace(day=1)
        first = (this_first - timedelta(days=1)).replace(day=1)
        start, end, label = _midnight(first, tz), _midnight(this_first, tz), f"{first:%B %Y}"
    else:
        raise ValueError(f"unknown period preset {preset!r}")
    return start.astimezone(UTC), end.astimezone(UTC), label


def next_run(cadence: str, tz: ZoneInfo, now: datetime) -> datetime:
    """When a schedule runs next: an hour after the next period boundary after ``now``."""
    local = now.astimezone(tz)
    today = local.date()
    if cadence == "daily":
        boundary = today + timedelta(days=1)
    elif cadence == "weekly":
        boundary = today + timedelta(days=7 - today.weekday())
    elif cadence == "monthly":
        boundary = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"cadence must be one of {', '.join(CADENCES)}")
    candidate = _midnight(boundary, tz) + GRACE
    if candidate.astimezone(UTC) <= now.astimezone(UTC):  # already past today's boundary + grace
        return next_run(cadence, tz, candidate + timedelta(minutes=1))
    return candidate.astimezone(UTC)


def factory_zone(s: Session, factory_id: str) -> ZoneInfo:
    tz = s.execute(select(Factory.timezone).where(Factory.id == factory_id)).scalar_one_or_none()
    return ZoneInfo(tz or "UTC")


def settings_of(s: Session) -> Settings:
    row = s.execute(select(ReportSettings)).scalar_one_or_none()
    if row is None:
        return Settings()
    return Settings(
        currency=row.currency,
        tariff=dict(row.tariff or {}),
        emission_factor=row.emission_factor_kg_per_kwh,
        shifts=list(row.shifts or []) or Settings().shifts,
    )


def resolve_params(s: Session, factory_id: str, body: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The stored parameters of a request: the period resolved to UTC start/end and a label."""
    now = now or utcnow()
    tz = factory_zone(s, factory_id)
    preset = body.get("preset") or "last_7_days"
    if preset == "custom":
        start, end = body.get("start"), body.get("end")
        if start is None or end is None:
            raise ApiError(422, "period_required", "a custom period needs start and end")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            raise ApiError(422, "invalid_period", "end must be after start")
        label = f"{start.astimezone(tz):%d %b %Y %H:%M} - {end.astimezone(tz):%d %b %Y %H:%M}"
    elif preset in PRESETS:
        start, end, label = period_for(preset, tz, now)
    else:
        raise ApiError(422, "invalid_period", f"preset must be one of {', '.join(PRESETS)}")
    if end - start > MAX_SPAN:
        raise ApiError(422, "period_too_long", f"a report covers at most {MAX_SPAN.days} days")
    sections = [x for x in SECTIONS if x in (body.get("sections") or SECTIONS)]
    if not sections:
        raise ApiError(422, "no_sections", f"choose at least one section of {', '.join(SECTIONS)}")
    return {
        "preset": preset,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "label": label,
        "devices": body.get("devices"),
        "sections": sections,
        "properties": list(body.get("properties") or []),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "report"


@dataclass
class Rendered:
    data: bytes
    mime: str
    extension: str


def render(content: dict[str, Any], fmt: str) -> Rendered:
    from factoryops.reports import render as renderers

    mime, ext = FORMATS[fmt]
    if fmt == "pdf":
        return Rendered(renderers.render_pdf(drawable(content)), mime, ext)
    if fmt == "xlsx":
        return Rendered(renderers.render_excel(drawable(content)), mime, ext)
    return Rendered(renderers.render_json(content), mime, ext)  # JSON escapes any character


def drawable(value: Any) -> Any:
    """``value`` with every string made :func:`~factoryops.core.text.printable`: a control character in a
    name stored before names were checked has no glyph in a chart and is refused in an Excel cell."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: drawable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [drawable(v) for v in value]
    return value


class ReportService:
    def __init__(
        self,
        db: Database,
        store: TimeseriesStore | None,
        objects: ObjectStore | None,
        notifications: NotificationSettings,
    ) -> None:
        self.db = db
        self.store = store
        self.objects = objects
        self.notifications = notifications

    # ------------------------------------------------------------------ requests
    def request(
        self,
        s: Session,
        queue: JobQueue,
        title: str,
        fmt: str,
        params: dict[str, Any],
        created_by: str,
        schedule_id: str = "",
    ) -> Report:
        if fmt not in FORMATS:
            raise ApiError(422, "invalid_format", f"format must be one of {', '.join(FORMATS)}")
        report = Report(title=title, format=fmt, params=params, created_by=created_by, schedule_id=schedule_id)
        s.add(report)
        s.flush()
        job = queue.enqueue(s, GENERATE_KIND, {"report_id": report.id}, created_by=created_by, max_attempts=3)
        report.job_id = job.id
        return report

    def get(self, s: Session, report_id: str) -> Report:
        report = s.get(Report, report_id)
        if report is None:
            raise not_found("report")
        return report

    def state_of(self, s: Session, report: Report) -> tuple[str, Job | None]:
        job = s.get(Job, report.job_id) if report.job_id else None
        if report.state in ("succeeded", "failed") or job is None:
            return report.state, job
        live = {str(JobState.running): "running", str(JobState.queued): "queued"}
        return live.get(job.state, report.state), job

    def retry(self, s: Session, queue: JobQueue, report_id: str) -> Report:
        report = self.get(s, report_id)
        state, job = self.state_of(s, report)
        if state not in ("failed", "cancelled") or job is None:
            raise ApiError(409, "report_not_retryable", f"Only a failed report can be retried; this one is {state}.")
        queue.retry(s, job.id)
        report.state = "queued"
        report.error = ""
        report.finished_at = None
        return report

    # ------------------------------------------------------------------ the job
    def generate(self, ctx: JobContext) -> dict[str, Any]:
        if self.store is None or self.objects is None:
            raise RuntimeError("this process has no time-series store or object store configured")
        factory_id = ctx.factory_id
        report_id = ctx.payload["report_id"]
        with self.db.factory_session(factory_id) as s:
            report = self.get(s, report_id)
            s.expunge(report)
            settings = settings_of(s)
            recipients: list[str] = []
            if report.schedule_id:
                schedule = s.get(ReportSchedule, report.schedule_id)
                recipients = list(schedule.recipients) if schedule is not None else []
        self.objects.ping()
        self._set(factory_id, report_id, state="running")
        p = report.params
        params = ReportParams(
            start=datetime.fromisoformat(p["start"]),
            end=datetime.fromisoformat(p["end"]),
            title=report.title,
            label=p.get("label", ""),
            devices=p.get("devices"),
            sections=list(p.get("sections") or SECTIONS),
            properties=list(p.get("properties") or []),
        )

        def progress(percent: int, message: str) -> None:
            ctx.check()
            ctx.progress(max(1, min(95, percent)), message)

        began = time.monotonic()
        content = ContentBuilder(self.db, self.store, factory_id).build(params, settings, report_id, utcnow(), progress)
        ctx.progress(95, f"rendering {report.format.upper()}")
        try:
            rendered = render(content, report.format)
        except ValueError as exc:  # content the schema refuses: generating it again gives the same
            raise PermanentJobError(str(exc)) from exc
        digest = hashlib.sha256(rendered.data).hexdigest()
        key = Key("reports", report_id, f"{_slug(report.title)}-{digest[:12]}.{rendered.extension}")
        self.objects.put_bytes(FactoryScope(factory_id), key, rendered.data, content_type=rendered.mime)
        kpis = {k["key"]: k["value"] for k in content["summary"]["kpis"]}
        summary: dict[str, Any] = {
            "kpis": kpis,
            "highlights": content["summary"]["highlights"],
            "seconds": round(time.monotonic() - began, 2),
        }
        sent: list[str] = []
        if recipients:
            ctx.progress(98, f"emailing {len(recipients)} recipient(s)")
            sent, failure = self._email(report, content, rendered, key.name, recipients)
            if failure:
                # The file is made and stored: a mail server that is down or not configured must not
                # turn the report into a failure (it stays downloadable); the super admins are told.
                summary["email_error"] = failure
                system_alerts.report(
                    factory_id, "channel_failing", f"a scheduled report could not be emailed: {failure}"
                )
        self._set(  # succeeded last, once everything is done
            factory_id,
            report_id,
            state="succeeded",
            object_key=str(key),
            content_hash=digest,
            size_bytes=len(rendered.data),
            summary=summary,
            emailed_to=sent,
            error="",
            finished_at=utcnow(),
        )
        ctx.progress(100, f"{rendered.extension.upper()}, {len(rendered.data) / 1e6:.2f} MB")
        return {"report_id": report_id, "bytes": len(rendered.data)}

    def _email(
        self, report: Report, content: dict[str, Any], rendered: Rendered, filename: str, recipients: list[str]
    ) -> tuple[list[str], str]:
        factory = content["report"]["factory"]["name"]
        period = content["report"]["period"]["label"]
        body = "\n".join(
            [
                f"{report.title} - {factory}, {period}",
                "",
                *content["summary"]["highlights"],
                "",
                "The report is attached."
                if len(rendered.data) <= ATTACH_LIMIT
                else "The report is too large to attach; download it from the portal (Reports).",
            ]
        )
        attachments = [(filename, rendered.mime, rendered.data)] if len(rendered.data) <= ATTACH_LIMIT else []
        sent: list[str] = []
        for to in recipients:
            try:
                send_email(self.notifications, to, f"{report.title}: {factory}, {period}", body, attachments)
            except Exception as exc:  # ChannelOff, SMTP errors: recorded on the report
                log.warning("scheduled report %s not emailed to %s: %s", report.id, to, exc)
                return sent, f"{to}: {exc}"
            sent.append(to)
        return sent, ""

    def _set(self, factory_id: str, report_id: str, **values: Any) -> None:
        with self.db.factory_session(factory_id) as s:
            report = self.get(s, report_id)
            for key, value in values.items():
                setattr(report, key, value)

    def on_failure(self, ctx: JobContext, exc: BaseException, final: bool) -> None:
        report_id = ctx.payload["report_id"]
        if isinstance(exc, JobCancelled):
            self._set(ctx.factory_id, report_id, state="cancelled", finished_at=utcnow())
        elif final:
            self._set(ctx.factory_id, report_id, state="failed", error=str(exc)[:4000], finished_at=utcnow())
        else:
            self._set(ctx.factory_id, report_id, state="queued", error=f"retrying: {str(exc)[:1000]}")

    # ------------------------------------------------------------------ schedules
    def run_due_schedules(self, now: datetime | None = None) -> int:
        """Requests the report of every schedule that is due; returns how many were started."""
        now = now or utcnow()
        with self.db.unscoped_session() as s:  # the sweep serves every factory; each report is scoped below
            due = s.execute(
                select(ReportSchedule.id, ReportSchedule.factory_id, ReportSchedule.next_run_at)
                .where(ReportSchedule.enabled.is_(True), ReportSchedule.next_run_at <= now)
                .limit(100)
            ).all()
        started = 0
        for schedule_id, factory_id, due_at in due:
            try:
                started += self._run_schedule(factory_id, schedule_id, due_at, now)
            except Exception:  # one broken schedule must not stop the others
                log.exception("scheduled report %s of factory %s could not start", schedule_id, factory_id)
        return started

    def _run_schedule(self, factory_id: str, schedule_id: str, due_at: datetime, now: datetime) -> int:
        with self.db.factory_session(factory_id) as s:
            schedule = s.get(ReportSchedule, schedule_id)
            if schedule is None:
                return 0
            tz = factory_zone(s, factory_id)
            following = next_run(schedule.cadence, tz, now)
            claimed = s.execute(
                update(ReportSchedule)
                .where(ReportSchedule.id == schedule_id, ReportSchedule.next_run_at == due_at)
                .values(next_run_at=following, last_run_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return 0  # another worker took it
            body = {**schedule.params, "preset": CADENCES[schedule.cadence]}
            params = resolve_params(s, factory_id, body, now)
            report = self.request(
                s,
                JobQueue(self.db),
                schedule.name,
                schedule.format,
                params,
                f"schedule:{schedule.name}",
                schedule_id=schedule.id,
            )
            s.execute(
                update(ReportSchedule)
                .where(ReportSchedule.id == schedule_id)
                .values(last_report_id=report.id)
                .execution_options(synchronize_session=False)
            )
            log.info("scheduled report %r of factory %s started (%s)", schedule.name, factory_id, params["label"])
            return 1


class ScheduleSweep:
    """Runs :meth:`ReportService.run_due_schedules` at most every ``every`` seconds (called by the worker)."""

    def __init__(self, service: ReportService, every: float = 30.0) -> None:
        self.service = service
        self.every = every
        self._next = 0.0

    def maybe_run(self) -> int:
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self.every
        return self.service.run_due_schedules()


def handlers(service: ReportService) -> dict[str, Handler]:
    def handle(ctx: JobContext) -> dict[str, Any]:
        try:
            return service.generate(ctx)
        except (JobCancelled, PermanentJobError) as exc:
            service.on_failure(ctx, exc, final=True)
            raise
        except Exception as exc:
            service.on_failure(ctx, exc, final=ctx.job.attempts >= ctx.job.max_attempts)
            raise

    return {GENERATE_KIND: handle}
