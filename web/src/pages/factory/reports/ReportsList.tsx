// "/f/:slug/reports/history": the factory's reports, newest first, with their state. While any
// report on the page is queued or generating the page asks again every second, so progress moves
// without a reload. Ready reports can be downloaded and failed ones retried (reports permission).
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { describeError } from "../../../api/errors";
import {
  downloadReport,
  formatBytes,
  formatLabel,
  listReports,
  periodLabel,
  REPORT_ACTIVE,
  retryReport,
  type Report,
} from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { numeric, PagedTable } from "../../../components/DataTable";
import { Badge, Notice, PageHeader } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { usePaged } from "../../../lib/usePaged";
import { ReportProgress, ReportStateBadge, useBase, usePoll, useTimeZone } from "./common";

export function ReportsList() {
  const base = useBase();
  const navigate = useNavigate();
  const timeZone = useTimeZone();
  const { can } = useAuth();
  const mayReport = can("reports");
  const [flash, setFlash] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const [acting, setActing] = useState<string | null>(null);

  const reports = usePaged<Report>((limit, offset) => listReports(limit, offset), []);
  const active = Boolean(reports.page?.items.some((r) => REPORT_ACTIVE.has(r.state)));
  usePoll(active && !reports.loading, reports.reload);

  const download = async (report: Report) => {
    setActing(report.id);
    try {
      const name = await downloadReport(report);
      setFlash({ tone: "success", text: `Downloaded ${name}.` });
    } catch (err) {
      setFlash({ tone: "error", text: `Could not download “${report.title}”: ${describeError(err)}` });
    } finally {
      setActing(null);
    }
  };

  const retry = async (report: Report) => {
    setActing(report.id);
    try {
      await retryReport(report.id);
      setFlash({ tone: "success", text: `“${report.title}” is being generated again.` });
      reports.reload();
    } catch (err) {
      setFlash({ tone: "error", text: `Could not retry “${report.title}”: ${describeError(err)}` });
    } finally {
      setActing(null);
    }
  };

  return (
    <>
      <PageHeader
        title="Reports"
        subtitle="Reports of this factory, newest first. Ready reports stay available for download."
        actions={
          <>
            <Badge tone={mayReport ? "good" : "neutral"}>{mayReport ? "You can request and download" : "Read only"}</Badge>
            {mayReport && (
              <Link className="btn btn-primary" to={`${base}/new`}>
                + New report
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
      <section className="card">
        <div className="table-toolbar">
          <span className="muted small">{active ? "Following the reports being generated…" : "\u00a0"}</span>
          <span className="toolbar-spacer" />
          <button type="button" className="btn btn-secondary btn-sm" onClick={reports.reload}>
            Refresh
          </button>
        </div>
        <PagedTable
          paged={reports}
          label="Reports"
          columns={["Report", "Period", "Format", "State", numeric("Size"), "Created", { ariaLabel: "Actions" }]}
          empty={mayReport ? "No reports yet. Build the first one." : "No reports yet."}
          noun="reports"
          loadError="Could not load the reports"
          loading="Loading reports…"
          row={(r) => {
            const href = `${base}/${encodeURIComponent(r.id)}`;
            return (
              <tr
                key={r.id}
                data-report={r.id}
                data-state={r.state}
                className={`row-link${r.state === "failed" ? " row-failed" : ""}`}
                onClick={(e) => {
                  if ((e.target as HTMLElement).closest("a, button")) return;
                  navigate(href);
                }}
              >
                <td>
                  <Link className="cell-primary" to={href}>
                    {r.title}
                  </Link>
                  {r.schedule_id && <div className="cell-secondary">Scheduled</div>}
                </td>
                <td>{periodLabel(r)}</td>
                <td>
                  <Badge>{formatLabel(r.format)}</Badge>
                </td>
                <td className="report-state-cell">
                  <ReportStateBadge state={r.state} />
                  {REPORT_ACTIVE.has(r.state) && <ReportProgress progress={r.progress} message={r.message} compact />}
                  {r.state === "failed" && r.error && <div className="cell-secondary text-bad report-error-line" title={r.error}>
                      {r.error}
                    </div>}
                </td>
                <td className="num nowrap">{r.state === "succeeded" ? formatBytes(r.size_bytes) : "—"}</td>
                <td className="nowrap">
                  {formatDateTime(r.created_at, timeZone)}
                  <div className="cell-secondary">{r.created_by}</div>
                </td>
                <td className="nowrap">
                  <div className="row-actions">
                    {mayReport && r.state === "succeeded" && (
                      <button
                        type="button"
                        className="btn btn-secondary btn-sm"
                        disabled={acting === r.id}
                        aria-label={`Download ${r.title}`}
                        onClick={() => void download(r)}
                      >
                        Download
                      </button>
                    )}
                    {mayReport && r.state === "failed" && (
                      <button
                        type="button"
                        className="btn btn-secondary btn-sm"
                        disabled={acting === r.id}
                        aria-label={`Retry ${r.title}`}
                        onClick={() => void retry(r)}
                      >
                        Retry
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            );
          }}
        />
      </section>
    </>
  );
}
