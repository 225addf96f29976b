// "/f/:slug/reports/schedules": scheduled reports. Each runs an hour after its period ends (day,
// week or month in the factory's time zone) and emails the file to its recipients. The super
// admin creates, edits, deletes and runs them now; everyone else sees the list.
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { describeError } from "../../../api/errors";
import { cadenceLabel, CADENCES, deleteSchedule, formatLabel, listSchedules, runSchedule, type Schedule } from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Modal, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useBase, useTimeZone } from "./common";

export function SchedulesList() {
  const base = useBase();
  const navigate = useNavigate();
  const timeZone = useTimeZone();
  const { can } = useAuth();
  const mayChange = can("reports");
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [flash, setFlash] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const [acting, setActing] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Schedule | null>(null);

  const load = useCallback(() => {
    listSchedules()
      .then((items) => {
        setSchedules(items);
        setLoadError(null);
      })
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, []);
  useEffect(load, [load]);

  const runNow = async (schedule: Schedule) => {
    setActing(schedule.id);
    try {
      const report = await runSchedule(schedule.id);
      navigate(`${base}/${encodeURIComponent(report.id)}`, { state: { requested: true } });
    } catch (err) {
      setFlash({ tone: "error", text: `Could not run “${schedule.name}”: ${describeError(err)}` });
      setActing(null);
    }
  };

  const remove = async (schedule: Schedule) => {
    setActing(schedule.id);
    try {
      await deleteSchedule(schedule.id);
      setFlash({ tone: "success", text: `Schedule “${schedule.name}” deleted.` });
      setDeleting(null);
      load();
    } catch (err) {
      setFlash({ tone: "error", text: `Could not delete “${schedule.name}”: ${describeError(err)}` });
      setDeleting(null);
    } finally {
      setActing(null);
    }
  };

  return (
    <>
      <PageHeader
        title="Scheduled reports"
        subtitle={`Generated an hour after each day, week or month ends${timeZone ? ` (${timeZone})` : ""}, and emailed to the recipients.`}
        actions={
          <>
            <Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only: needs the reports permission"}</Badge>
            {mayChange && (
              <Link className="btn btn-primary" to={`${base}/schedules/new`}>
                + New schedule
              </Link>
            )}
          </>
        }
      />
      {flash && (
        <Notice tone={flash.tone} onClose={() => setFlash(null)}>
          {flash.text}
        </Notice>
      )}
      {loadError && (
        <Notice tone="error" title="Could not load the schedules">
          {loadError}
        </Notice>
      )}
      {!schedules && !loadError && <Spinner label="Loading schedules…" />}
      {schedules && (
        <section className="card">
          <div className="table-wrap">
            <table className="table" aria-label="Schedules">
              <thead>
                <tr>
                  <th>Schedule</th>
                  <th>Cadence</th>
                  <th>Format</th>
                  <th>Recipients</th>
                  <th>Next run</th>
                  <th>Last report</th>
                  {mayChange && <th aria-label="Actions" />}
                </tr>
              </thead>
              <tbody>
                {schedules.length === 0 && (
                  <tr>
                    <td colSpan={mayChange ? 7 : 6} className="table-empty">
                      {mayChange ? "No scheduled reports yet. Create the first one." : "No scheduled reports yet."}
                    </td>
                  </tr>
                )}
                {schedules.map((s) => (
                  <tr key={s.id} data-schedule={s.name} className={s.enabled ? "" : "row-muted"}>
                    <td>
                      {mayChange ? (
                        <Link className="cell-primary" to={`${base}/schedules/${encodeURIComponent(s.id)}`}>
                          {s.name}
                        </Link>
                      ) : (
                        <span className="cell-primary">{s.name}</span>
                      )}
                      {!s.enabled && (
                        <div className="cell-secondary">
                          <Badge>Paused</Badge>
                        </div>
                      )}
                    </td>
                    <td>
                      {cadenceLabel(s.cadence)}
                      <div className="cell-secondary">{CADENCES.find((c) => c.value === s.cadence)?.period}</div>
                    </td>
                    <td>
                      <Badge>{formatLabel(s.format)}</Badge>
                    </td>
                    <td className="report-recipients">
                      {s.recipients.map((r) => (
                        <div key={r}>{r}</div>
                      ))}
                    </td>
                    <td className="nowrap">{s.enabled ? formatDateTime(s.next_run_at, timeZone) : "—"}</td>
                    <td className="nowrap">
                      {s.last_report_id ? (
                        <Link to={`${base}/${encodeURIComponent(s.last_report_id)}`}>{formatDateTime(s.last_run_at, timeZone)}</Link>
                      ) : (
                        <span className="muted">Not run yet</span>
                      )}
                    </td>
                    {mayChange && (
                      <td className="nowrap">
                        <div className="row-actions">
                          <button
                            type="button"
                            className="btn btn-secondary btn-sm"
                            disabled={acting === s.id}
                            aria-label={`Run ${s.name} now`}
                            onClick={() => void runNow(s)}
                          >
                            Run now
                          </button>
                          <Link className="btn btn-secondary btn-sm" to={`${base}/schedules/${encodeURIComponent(s.id)}`} aria-label={`Edit ${s.name}`}>
                            Edit
                          </Link>
                          <button
                            type="button"
                            className="btn btn-danger-outline btn-sm"
                            disabled={acting === s.id}
                            aria-label={`Delete ${s.name}`}
                            onClick={() => setDeleting(s)}
                          >
                            Delete
                          </button>
                        </div>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      {deleting && (
        <Modal title="Delete the schedule?" onClose={() => setDeleting(null)}>
          <p>
            “{deleting.name}” will no longer be generated nor emailed. Reports it already made stay in the history.
          </p>
          <div className="form-actions">
            <button type="button" className="btn btn-danger" disabled={acting === deleting.id} onClick={() => void remove(deleting)}>
              Delete schedule
            </button>
            <button type="button" className="btn btn-secondary" onClick={() => setDeleting(null)}>
              Keep it
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}
