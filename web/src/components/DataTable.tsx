// The portal's list table: a scrolling wrapper, a labelled table, its header row and, when a list
// is empty, one row that says so across every column. PagedTable shows one page of a usePaged list
// in it, with the list's loading state, its error and the pagination below.
import type { ReactNode } from "react";
import type { Paged } from "../lib/usePaged";
import { Notice, Pagination, Spinner } from "./ui";

/** A header cell: its text, or the text (or only an aria-label) with a class such as "num". */
export type Column = string | { label?: string; className?: string; ariaLabel?: string };

/** A right-aligned column of numbers. */
export function numeric(label: string): Column {
  return { label, className: "num" };
}

export function DataTable({
  label,
  columns,
  empty,
  children,
}: {
  /** The table's accessible name. */
  label: string;
  columns: Column[];
  /** The empty row's message; pass it only while there is no row (false/null otherwise). */
  empty?: ReactNode;
  children?: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label={label}>
        <thead>
          <tr>
            {columns.map((column, i) =>
              typeof column === "string" ? (
                <th key={i}>{column}</th>
              ) : (
                <th key={i} className={column.className} aria-label={column.ariaLabel}>
                  {column.label}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>
          {empty && (
            <tr>
              <td colSpan={columns.length} className="table-empty">
                {empty}
              </td>
            </tr>
          )}
          {children}
        </tbody>
      </table>
    </div>
  );
}

export function PagedTable<T>({
  paged,
  label,
  columns,
  empty,
  noun,
  loadError,
  loading,
  row,
}: {
  paged: Paged<T>;
  label: string;
  columns: Column[];
  /** The message when the page has no item. */
  empty: ReactNode;
  /** The plural the pagination counts in ("users"). */
  noun: string;
  /** The title of the error notice when the page cannot be loaded. */
  loadError: string;
  /** The spinner's text while the first page loads. */
  loading: string;
  row: (item: T) => ReactNode;
}) {
  return (
    <>
      {paged.error && (
        <Notice tone="error" title={loadError}>
          {paged.error}
        </Notice>
      )}
      {!paged.page && paged.loading && <Spinner label={loading} />}
      {paged.page && (
        <>
          <DataTable label={label} columns={columns} empty={paged.page.items.length === 0 && empty}>
            {paged.page.items.map((item) => row(item))}
          </DataTable>
          <Pagination total={paged.page.total} limit={paged.limit} offset={paged.offset} onChange={paged.setOffset} noun={noun} />
        </>
      )}
    </>
  );
}
