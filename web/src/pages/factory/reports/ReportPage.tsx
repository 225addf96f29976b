// "/f/:slug/reports/:reportId": one report. While queued or generating the page asks every second
// for its progress and the job's message; once ready it shows the summary (the KPIs as cards, the
// highlights in words) and the Download button; a failed report says why and can be retried.
import { useCallback, useEffect, useState } from "react";
import { Link, useLocation, useParams } from "react-router-dom";
import { ApiError, describeError } from "../../../api/errors";
import {
  downloadReport,
  formatBytes,
  formatLabel,
  getReport,
  getReportSettings,
  periodLabel,
  REPORT_ACTIVE,
  reportHighlights,
  reportKpis,
  retryReport,
  SECTIONS,
  type Report,
} from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Card, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { ReportProgress, ReportStateBadge, useBase, usePoll, useTimeZone } from "./common";

function listOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

export function ReportPage() {
  const { reportId = "" } = useParams();
  const base = useBase();
  const location = useLocation();
  const timeZone = useTimeZone();
  const { can } = useAuth();
  const mayReport = can("reports");
  const [report, setReport] = useState<Report | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; message: string } | null>(null);
  const [currency, setCurrency] = useState("");
  const [acting, setActing] = useState<"download" | "retry" | null>(null);
  const [flash, setFlash] = useState<{ tone: "success" | "error"; text: string } | null>(null);
  const requested = Boolean((location.state as { requested?: boolean } | null)?.requested);

  const load = useCallback(() => {
    getReport(reportId)
      .then((next) => {
        setReport(next);
        setLoadError(null);
      })
      .catch((err: unknown) => setLoadError({ status: err instanceof ApiError ? err.status : 0, message: describeError(err) }));
  }, [reportId]);

  useEffect(() => {
    setReport(null);
    load();
  }, [load]);

  const active = report !== null && REPORT_ACTIVE.has(report.state);
  usePoll(active, load);

  // The cost card needs the factory's currency (the stored summary holds only the numbers).
  const succeeded = report?.state === "succeeded";
  useEffect(() => {
    if (!succeeded || currency) return;
    getReportSettings()
      .then((s) => setCurrency(s.currency))
      .catch(() => setCurrency(""));
  }, [succeeded, currency]);

  const download = async () => {
    if (!report) return;
    setActing("download");
    try {
      const name = await downloadReport(report);
      setFlash({ tone: "success", text: `Downloaded ${name}.` });
    } catch (err) {
      setFlash({ tone: "error", text: `Could not download the report: ${describeError(err)}` });
    } finally {
      setActing(null);
    }
  };

  const retry = async () => {
    if (!report) return;
    setActing("retry");
    try {
      setReport(await retryReport(report.id));
      setFlash(null);
    } catch (err) {
      setFlash({ tone: "error", text: `Could not retry the report: ${describeError(err)}` });
    } finally {
      setActing(null);
    }
  };

  const crumbs = (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={`${base}/history`}>Reports</Link> <span aria-hidden="true">/</span> <span>{report?.title ?? "Report"}</span>
    </nav>
  );

  if (loadError && !report) {
    return (
      <>
        {crumbs}
        <PageHeader title="Report" />
        <Notice tone="error" title={loadError.status === 404 ? "This report does not exist" : "Could not load the report"}>
          {loadError.status === 404 ? "It may belong to another factory, or the link is wrong." : loadError.message}{" "}
          <Link to={`${base}/history`}>Back to the reports</Link>
        </Notice>
      </>
    );
  }
  if (!report) return <Spinner label="Loading the report…" />;

  const kpis = succeeded ? reportKpis(report, currency) : [];
  const highlights = succeeded ? reportHighlights(report) : [];
  const devices = report.params.devices;
  const sections = listOf(report.params.sections);
  const properties = listOf(report.params.properties);

  return (
    <>
      {crumbs}
      <PageHeader
        title={report.title}
        subtitle={
          <>
            <span data-testid="report-period">{periodLabel(report)}</span> · {formatLabel(report.format)}
          </>
        }
        actions={
          <>
            <ReportStateBadge state={report.state} />
            {succeeded && (
              <button type="button" className="btn btn-primary" disabled={acting !== null} onClick={() => void download()}>
                {acting === "download" ? "Downloading…" : `Download ${formatLabel(report.format)}`}
              </button>
            )}
          </>
        }
      />
      {flash && (
        <Notice tone={flash.tone} onClose={() => setFlash(null)}>
          {flash.text}
        </Notice>
      )}
      {requested && active && !flash && <Notice tone="info">The report is being generated. You can leave this page; it will be in the history.</Notice>}

      {active && (
        <Card title={report.state === "queued" ? "Waiting for a worker" : "Generating"}>
          <ReportProgress progress={report.progress} message={report.message || (report.state === "queued" ? "queued" : "starting")} />
          {report.error && (
            <p className="small muted" data-testid="report-retrying">
              The last attempt failed: {report.error.replace(/^retrying:\s*/, "")}. It is tried again automatically.
            </p>
          )}
        </Card>
      )}

      {report.state === "failed" && (
        <Notice tone="error" title="The report could not be generated">
          <p className="pre-wrap" data-testid="report-error">
            {report.error || "No reason was recorded."}
          </p>
          {mayReport ? (
            <button type="button" className="btn btn-secondary btn-sm" disabled={acting !== null} onClick={() => void retry()}>
              {acting === "retry" ? "Retrying…" : "Retry"}
            </button>
          ) : (
            <span className="small">Retrying needs the reports permission.</span>
          )}
        </Notice>
      )}
      {report.state === "cancelled" && <Notice tone="warning" title="The report was cancelled" />}

      {succeeded && (
        <Card title="Summary">
          {kpis.length > 0 && (
            <div className="report-kpis" data-testid="report-kpis">
              {kpis.map((k) => (
                <div key={k.key} className="stat report-kpi" data-kpi={k.key}>
                  <span className="stat-value">
                    {k.value}
                    {k.unit && <span className="report-kpi-unit"> {k.unit}</span>}
                  </span>
                  <span className="stat-label">{k.label}</span>
                </div>
              ))}
            </div>
          )}
          {highlights.length > 0 ? (
            <ul className="report-highlights" aria-label="Highlights">
              {highlights.map((h, i) => (
                <li key={i}>{h}</li>
              ))}
            </ul>
          ) : (
            <p className="muted">The report has no summary.</p>
          )}
        </Card>
      )}

      <Card title="Details">
        <dl className="facts report-facts">
          <dt>Period</dt>
          <dd>
            {periodLabel(report)}
            {typeof report.params.start === "string" && typeof report.params.end === "string" && (
              <div className="small muted">
                {formatDateTime(report.params.start, timeZone)} – {formatDateTime(report.params.end, timeZone)}
              </div>
            )}
          </dd>
          <dt>Devices</dt>
          <dd>{Array.isArray(devices) && devices.length ? <span className="mono">{listOf(devices).join(", ")}</span> : "Every device"}</dd>
          <dt>Sections</dt>
          <dd>{sections.map((s) => SECTIONS.find((x) => x.value === s)?.label ?? s).join(", ") || "—"}</dd>
          {properties.length > 0 && (
            <>
              <dt>Properties</dt>
              <dd className="mono">{properties.join(", ")}</dd>
            </>
          )}
          <dt>Format</dt>
          <dd>{formatLabel(report.format)}</dd>
          <dt>Requested</dt>
          <dd>
            {formatDateTime(report.created_at, timeZone)} by {report.created_by}
          </dd>
          {report.finished_at && (
            <>
              <dt>Finished</dt>
              <dd>{formatDateTime(report.finished_at, timeZone)}</dd>
            </>
          )}
          {succeeded && (
            <>
              <dt>Size</dt>
              <dd>{formatBytes(report.size_bytes)}</dd>
              <dt>SHA-256</dt>
              <dd className="mono small report-hash">{report.content_hash}</dd>
            </>
          )}
          {report.emailed_to.length > 0 && (
            <>
              <dt>Emailed to</dt>
              <dd>{report.emailed_to.join(", ")}</dd>
            </>
          )}
          {typeof report.summary?.email_error === "string" && (
            <>
              <dt>Not emailed</dt>
              <dd data-testid="report-email-error" className="error-text">
                {report.summary.email_error}
              </dd>
            </>
          )}
        </dl>
      </Card>
    </>
  );
}
