"""The Excel workbook: the data behind every chart and table, typed, for people who keep working on the numbers.

Sheets: Summary (KPIs, highlights, report metadata); one per section (Energy, Daily, Weekday, Shifts,
Tariff, Load curve, Properties, Alerts, Alerts by rule, Alerts by device, Longest alerts, Open alerts,
Analytics, Analytics metrics), only for the sections the report has; then one "Device <id>" sheet per
device. Native Excel charts, real numbers and datetimes with number formats, frozen header rows,
fitted column widths and an autofilter on each sheet's table.

Excel has no time zones: times are written as the factory's local wall-clock time (said on the
Summary sheet and in the column headers).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.axis import DateAxis
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from factoryops.reports.render import charts
from factoryops.reports.render.json_out import validate

KWH = "#,##0.0"
KW = "#,##0.0"
KG = "#,##0.0"
NUM = "#,##0.00"
INT = "#,##0"
PCT = "0.0%"
DATE = "yyyy-mm-dd"
DATETIME = "yyyy-mm-dd hh:mm"
DURATION = "[h]:mm:ss"
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor=charts.INK.lstrip("#").upper())
HEADER_STYLE = "FactoryOps header"
TITLE_FONT = Font(bold=True, size=14)
BOLD = Font(bold=True)
NOTE_FONT = Font(italic=True, color="5B6770")
LINK_FONT = Font(color="1F4E9A", underline="single")
MIN_WIDTH, MAX_WIDTH = 8, 60
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\']")

Column = tuple[str, str | None]  # header, number format


def money_format(currency: str) -> str:
    """Money with the currency code shown after the number, e.g. ``#,##0.00 [$EUR]``."""
    return f"#,##0.00 [${currency}]"


def _pct(value: float | None) -> float | None:
    """Content percentages are 0-100; Excel percentages are fractions shown with ``0.0%``."""
    return None if value is None else float(value) / 100.0


def _duration(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=float(seconds))


class _Book:
    """A workbook being filled, with the factory's zone for times and the currency for money."""

    def __init__(self, content: dict[str, Any]) -> None:
        rep = content["report"]
        self.content = content
        self.tz: ZoneInfo | None = charts.zone(rep["factory"]["timezone"])
        self.tz_name: str = rep["factory"]["timezone"]
        self.money = money_format(rep["currency"])
        self.currency: str = rep["currency"]
        self.wb = Workbook()
        self.wb.remove(self.wb.active)
        self.wb.add_named_style(NamedStyle(HEADER_STYLE, font=HEADER_FONT, fill=HEADER_FILL))
        self.device_sheets: dict[str, str] = {}

    def time(self, ts: str | None) -> datetime | None:
        return charts.local_naive(ts, self.tz)

    def local(self, header: str) -> str:
        return f"{header} (local time)"

    def sheet(self, title: str) -> Worksheet:
        return self.wb.create_sheet(title)


def _table(
    ws: Worksheet, columns: Sequence[Column], rows: Sequence[Sequence[Any]], *, row: int = 1, col: int = 1,
    main: bool = True,
) -> tuple[int, int]:  # fmt: skip
    """Write a header and typed rows at (row, col); the sheet's main table gets the frozen header and autofilter.

    Returns the first and last data row.
    """
    for j, (header, _) in enumerate(columns):
        ws.cell(row=row, column=col + j, value=header).style = HEADER_STYLE
    for i, values in enumerate(rows, start=1):
        for j, value in enumerate(values):
            cell = ws.cell(row=row + i, column=col + j, value=value)
            fmt = columns[j][1]
            if fmt is not None and value is not None:
                cell.number_format = fmt
    last = row + max(len(rows), 1)
    if main:
        ws.freeze_panes = ws.cell(row=row + 1, column=1)
        ws.auto_filter.ref = f"{get_column_letter(col)}{row}:{get_column_letter(col + len(columns) - 1)}{last}"
    return row + 1, row + len(rows)


def _key_values(ws: Worksheet, title: str, pairs: Sequence[tuple[str, Any, str | None]], *, row: int, col: int) -> int:
    """A small label/value block beside a table (totals, tariff); returns the next free row."""
    ws.cell(row=row, column=col, value=title).font = BOLD
    for i, (label, value, fmt) in enumerate(pairs, start=1):
        ws.cell(row=row + i, column=col, value=label)
        cell = ws.cell(row=row + i, column=col + 1, value=value)
        if fmt is not None and value is not None:
            cell.number_format = fmt
    return row + len(pairs) + 2


def _display_len(value: Any, fmt: str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, timedelta):
        return 10
    if isinstance(value, bool):
        return 5
    if isinstance(value, int | float):
        if fmt == PCT:
            return len(f"{value * 100:.1f}%")
        text = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
        return len(text) + (5 if fmt and "[$" in fmt else 0)
    return max((len(line) for line in str(value).splitlines()), default=0)


def _fit_widths(ws: Worksheet) -> None:
    """Column widths from the longest shown value (capped so one long headline does not make a huge column)."""
    widths: dict[int, int] = {}
    # the written cells only: iter_rows() would create (and then save) every empty cell of the used range
    for (_, column), cell in ws._cells.items():
        if cell.value is None:
            continue
        n = _display_len(cell.value, cell.number_format if cell.number_format != "General" else None)
        widths[column] = max(widths.get(column, 0), n)
    for column, n in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = max(MIN_WIDTH, min(MAX_WIDTH, n + 2))


def _bar(title: str, y_title: str, data: Reference, cats: Reference, *, horizontal: bool = False) -> BarChart:
    chart = BarChart()
    chart.type = "bar" if horizontal else "col"
    chart.title = title
    chart.y_axis.title = y_title
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(cats)
    chart.legend = None
    chart.height, chart.width = (7.5 + 0.35 * max(0, data.max_row - data.min_row - 10), 18) if horizontal else (8, 18)
    chart.x_axis.delete = False  # openpyxl 3.1 hides axes unless told (Excel then shows no labels)
    chart.y_axis.delete = False
    if horizontal:
        chart.x_axis.scaling.orientation = "maxMin"  # largest consumer on top
    return chart


# --- sheets ----------------------------------------------------------------------------------------------------


def _summary(b: _Book) -> None:
    c = b.content
    rep = c["report"]
    ws = b.sheet("Summary")
    ws.cell(
        row=1, column=1, value=f"{rep['title']} - {rep['factory']['name']} - {rep['period']['label']}"
    ).font = TITLE_FONT
    ws.cell(
        row=2, column=1, value=f"Times are local wall-clock times in {b.tz_name} (Excel cells have no time zone)."
    ).font = NOTE_FONT
    ws.freeze_panes = "A2"
    kpi_cols: list[Column] = [("Key", None), ("KPI", None), ("Value", None), ("Unit", None), ("Previous", None),
                              ("Change vs previous", PCT)]  # fmt: skip
    start = 4
    ws.cell(row=start - 1, column=1, value="Key figures").font = BOLD
    kpis = c["summary"]["kpis"]
    rows = [[k["key"], k["label"], k["value"], k["unit"], k["previous"], _pct(k["change_pct"])] for k in kpis]
    _table(ws, kpi_cols, rows, row=start, main=False)
    for i, k in enumerate(kpis, start=start + 1):
        unit = k["unit"] or ""
        fmt = b.money if unit == b.currency else KWH if unit in ("kWh", "kW", "kg") else NUM
        for col in (3, 5):
            ws.cell(row=i, column=col).number_format = fmt
    ws.auto_filter.ref = f"A{start}:F{start + max(len(rows), 1)}"
    r = start + max(len(rows), 1) + 2
    ws.cell(row=r, column=1, value="Highlights").font = BOLD
    for i, line in enumerate(c["summary"]["highlights"], start=1):
        ws.cell(row=r + i, column=1, value=f"• {line}")
    r += len(c["summary"]["highlights"]) + 2
    period, prev = rep["period"], rep["previous_period"]
    tariff = rep["tariff"]
    tariff_text = {
        "flat": f"flat {tariff['flat_price']} {b.currency}/kWh",
        "time_of_use": "time of use (see the Tariff sheet)" if c.get("energy") is not None else "time of use",
    }.get(tariff["kind"], "none set (costs are not calculated)")
    meta: list[tuple[str, Any, str | None]] = [
        ("Report id", rep["id"], None),
        ("Title", rep["title"], None),
        ("Factory", rep["factory"]["name"], None),
        ("Factory id", rep["factory"]["id"], None),
        ("Time zone", b.tz_name, None),
        ("Period", period["label"], None),
        ("Period start", b.time(period["start"]), DATETIME),
        ("Period end", b.time(period["end"]), DATETIME),
        ("Previous period start", b.time(prev["start"]) if prev else None, DATETIME),
        ("Previous period end", b.time(prev["end"]) if prev else None, DATETIME),
        ("Generated at", b.time(rep["generated_at"]), DATETIME),
        ("Devices", "all" if rep["devices"] is None else ", ".join(rep["devices"]), None),
        ("Sections", ", ".join(rep["sections"]) or "summary only", None),
        ("Currency", b.currency, None),
        ("Tariff", tariff_text, None),
        ("Emission factor (kg CO2/kWh)", rep["emission_factor_kg_per_kwh"], "0.000"),
        ("Content schema version", c["schema_version"], None),
    ]
    _key_values(ws, "Report", meta, row=r, col=1)
    _fit_widths(ws)
    ws.column_dimensions["A"].width = 30  # highlights run on from column A


def _energy_row(b: _Book, d: dict[str, Any]) -> list[Any]:
    return [
        d["device_id"], d["name"], d["kwh"], _pct(d["share_pct"]), d["peak_kw"], b.time(d["peak_at"]), d["cost"],
        d["co2_kg"], d["method"], d["counter_resets"], d["gaps"], _pct(d["completeness_pct"]),
    ]  # fmt: skip


def _energy_columns(b: _Book) -> list[Column]:
    return [
        ("Device id", None), ("Name", None), ("kWh", KWH), ("Share", PCT), ("Peak kW", KW),
        (b.local("Peak at"), DATETIME), (f"Cost ({b.currency})", b.money), ("CO2 kg", KG), ("Method", None),
        ("Counter resets", INT), ("Gaps", INT), ("Completeness", PCT),
    ]  # fmt: skip


def _energy(b: _Book) -> None:
    e = b.content["energy"]
    ws = b.sheet("Energy")
    cols = _energy_columns(b)
    first, _ = _table(ws, cols, [_energy_row(b, d) for d in e["devices"]])
    for i, d in enumerate(e["devices"]):
        target = b.device_sheets.get(d["device_id"])
        if target:
            cell = ws.cell(row=first + i, column=1)
            cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{target}'!A1")
            cell.font = LINK_FONT
    side = len(cols) + 2
    totals: list[tuple[str, Any, str | None]] = [
        ("Total kWh", e["total_kwh"], KWH),
        ("Previous period kWh", e["previous_total_kwh"], KWH),
        ("Change", _pct(e["change_pct"]), PCT),
        (f"Cost ({b.currency})", e["cost"], b.money),
        (f"Previous cost ({b.currency})", e["previous_cost"], b.money),
        ("CO2 kg", e["co2_kg"], KG),
        ("Peak kW", e["peak_kw"], KW),
        (b.local("Peak at"), b.time(e["peak_at"]), DATETIME),
        ("Peak device", e["peak_device"], None),
        ("Average kW", e["average_kw"], KW),
        ("Load factor", e["load_factor"], "0.00"),
    ]
    r = _key_values(ws, "Totals", totals, row=1, col=side)
    # the chart's data: the top 15 devices and the others in one bar
    top = charts.top_devices(e["devices"])
    if top:
        chart_col = side + 3
        _table(ws, [("Device (top 15 + others)", None), ("kWh", KWH)], top, row=1, col=chart_col, main=False)
        chart = _bar(
            "Consumption per device",
            "kWh",
            Reference(ws, min_col=chart_col + 1, min_row=1, max_row=1 + len(top)),
            Reference(ws, min_col=chart_col, min_row=2, max_row=1 + len(top)),
            horizontal=True,
        )
        ws.add_chart(chart, f"{get_column_letter(side)}{max(r, len(top) + 3)}")
    _fit_widths(ws)


def _simple_sheet(
    b: _Book, title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], chart: str | None = None,
    value_col: int = 2, line: bool = False,
) -> Worksheet:  # fmt: skip
    """One table from A1, with a chart of column ``value_col`` against column A to its right."""
    ws = b.sheet(title)
    _table(ws, columns, rows)
    if chart and rows:
        data = Reference(ws, min_col=value_col, min_row=1, max_row=1 + len(rows))
        cats = Reference(ws, min_col=1, min_row=2, max_row=1 + len(rows))
        anchor = f"{get_column_letter(len(columns) + 2)}2"
        if line:
            lc = LineChart()
            lc.title = chart
            lc.y_axis.title = columns[value_col - 1][0]
            lc.add_data(data, titles_from_data=True)
            lc.set_categories(cats)
            lc.legend = None
            lc.height, lc.width = 9, 24
            lc.x_axis = DateAxis(crossAx=100)
            lc.x_axis.number_format = "dd mmm"
            lc.x_axis.majorTimeUnit = "days"
            lc.x_axis.delete = False
            lc.y_axis.delete = False
            lc.y_axis.crossAx = 500
            series = lc.series[0]
            series.smooth = False
            series.graphicalProperties.line.width = 12700  # 1 pt
            ws.add_chart(lc, anchor)
        else:
            ws.add_chart(_bar(chart, columns[value_col - 1][0], data, cats), anchor)
    _fit_widths(ws)
    return ws


def _energy_detail(b: _Book) -> None:
    e = b.content["energy"]
    m = b.money
    _simple_sheet(
        b, "Daily", [("Date", DATE), ("kWh", KWH), (f"Cost ({b.currency})", m)],
        [[charts.parse_date(d["date"]), d["kwh"], d["cost"]] for d in e["by_day"]], "Daily consumption (kWh)",
    )  # fmt: skip
    _simple_sheet(
        b, "Weekday", [("Weekday", None), ("kWh", KWH), ("Mean kWh per day", KWH)],
        [[w["weekday"], w["kwh"], w["mean_kwh"]] for w in e["by_weekday"]], "Average consumption by weekday (kWh)",
        value_col=3,
    )  # fmt: skip
    _simple_sheet(
        b, "Shifts", [("Shift", None), ("kWh", KWH), ("Share", PCT)],
        [[s["shift"], s["kwh"], _pct(s["share_pct"])] for s in e["by_shift"]], "Consumption by shift (kWh)",
    )  # fmt: skip
    ws = _simple_sheet(
        b, "Tariff", [("Band", None), ("kWh", KWH), (f"Cost ({b.currency})", m)],
        [[t["band"], t["kwh"], t["cost"]] for t in e["by_tariff_band"]], "Consumption by tariff band (kWh)",
    )  # fmt: skip
    tariff = b.content["report"]["tariff"]
    col = 5 + (9 if e["by_tariff_band"] else 0)  # right of the chart when there is one
    if tariff["kind"] == "flat":
        _key_values(ws, "Tariff: flat", [(f"Price ({b.currency}/kWh)", tariff["flat_price"], "0.0000")], row=1, col=col)
    elif tariff["kind"] != "time_of_use":
        ws.cell(
            row=1, column=col, value="No tariff is set for this factory: costs are not calculated."
        ).font = NOTE_FONT
    else:
        bands = [
            [t["name"], t["price"], ", ".join(DAY_NAMES[d] for d in t["days"]), t["start"], t["end"]]
            for t in tariff["bands"]
        ]
        ws.cell(row=1, column=col, value="Tariff: time of use").font = BOLD
        _table(
            ws, [("Band", None), (f"Price ({b.currency}/kWh)", "0.0000"), ("Days", None), ("From", None), ("To", None)],
            bands, row=2, col=col, main=False,
        )  # fmt: skip
        _key_values(
            ws, "Outside every band", [(f"Price ({b.currency}/kWh)", tariff.get("default_price"), "0.0000")],
            row=len(bands) + 4, col=col,
        )  # fmt: skip
    _fit_widths(ws)
    _simple_sheet(
        b, "Load curve", [(b.local("Time"), DATETIME), ("kW", KW)],
        [[b.time(p["ts"]), p["kw"]] for p in e["load_curve"]], "Load curve (kW)", line=True,
    )  # fmt: skip


def _properties(b: _Book) -> None:
    items = b.content["properties"]["items"]
    _simple_sheet(b, "Properties", _property_columns(), [_property_row(i) for i in items])


def _property_columns() -> list[Column]:
    return [
        ("Device id", None), ("Property", None), ("Unit", None), ("Min", NUM), ("Mean", NUM), ("Max", NUM),
        ("Readings", INT), ("Expected", INT), ("Completeness", PCT),
    ]  # fmt: skip


def _property_row(i: dict[str, Any]) -> list[Any]:
    return [i["device_id"], i["property"], i["unit"], i["min"], i["mean"], i["max"], i["count"], i["expected"],
            _pct(i["completeness_pct"])]  # fmt: skip


def _alert_columns(b: _Book) -> list[Column]:
    return [
        ("Alert id", None), ("Rule", None), ("Device id", None), ("Severity", None), (b.local("Opened"), DATETIME),
        (b.local("Resolved"), DATETIME), ("Duration (s)", INT), ("Duration", DURATION),
    ]  # fmt: skip


def _alert_row(b: _Book, a: dict[str, Any]) -> list[Any]:
    return [
        a["id"], a["rule_name"], a["device_id"], a["severity"], b.time(a["opened_at"]), b.time(a["resolved_at"]),
        a["duration_seconds"], _duration(a["duration_seconds"]),
    ]  # fmt: skip


def _alerts(b: _Book) -> None:
    a = b.content["alerts"]
    ws = _simple_sheet(
        b, "Alerts", [("Date", DATE), ("Alerts", INT)],
        [[charts.parse_date(o["date"]), o["count"]] for o in a["over_time"]], "Alerts per day",
    )  # fmt: skip
    sev = a["by_severity"]
    col = 4 + (10 if a["over_time"] else 0)
    _key_values(
        ws,
        "Alerts in the period",
        [
            ("Total", a["total"], INT),
            ("Critical", sev["critical"], INT),
            ("Warning", sev["warning"], INT),
            ("Info", sev["info"], INT),
            ("Still open", len(a["open"]), INT),
            ("Mean time to acknowledge", _duration(a["mtta_seconds"]), DURATION),
            ("Mean time to resolve", _duration(a["mttr_seconds"]), DURATION),
            ("Mean time to acknowledge (s)", a["mtta_seconds"], INT),
            ("Mean time to resolve (s)", a["mttr_seconds"], INT),
        ],
        row=1,
        col=col,
    )
    _fit_widths(ws)
    _simple_sheet(
        b, "Alerts by rule", [("Rule id", None), ("Rule", None), ("Alerts", INT)],
        [[r["rule_id"], r["rule_name"], r["count"]] for r in a["by_rule"]],
    )  # fmt: skip
    _simple_sheet(
        b, "Alerts by device", [("Device id", None), ("Alerts", INT)],
        [[r["device_id"], r["count"]] for r in a["by_device"]],
    )  # fmt: skip
    _simple_sheet(b, "Longest alerts", _alert_columns(b), [_alert_row(b, x) for x in a["longest"]])
    _simple_sheet(b, "Open alerts", _alert_columns(b), [_alert_row(b, x) for x in a["open"]])


def _analytics(b: _Book) -> None:
    runs = b.content["analytics"]["runs"]
    _simple_sheet(
        b, "Analytics",
        [("Run id", None), ("Task", None), ("Mode", None), ("Model", None), ("Version", None),
         (b.local("Finished"), DATETIME), ("Data set", None), ("Headline", None)],
        [[r["id"], r["task"], r["mode"], r["model_name"], r["model_version"], b.time(r["finished_at"]),
          r["dataset_name"], r["headline"]] for r in runs],
    )  # fmt: skip
    _simple_sheet(
        b, "Analytics metrics", [("Run id", None), ("Task", None), ("Metric", None), ("Value", "#,##0.####")],
        [[r["id"], r["task"], k, v] for r in runs for k, v in r["metrics"].items()],
    )  # fmt: skip


def _sheet_names(device_ids: Sequence[str], taken: set[str]) -> dict[str, str]:
    """ "Device <id>" per device: at most 31 characters, no characters Excel forbids, unique ignoring case."""
    used = {t.lower() for t in taken}
    out: dict[str, str] = {}
    for dev in device_ids:
        base = _BAD_SHEET_CHARS.sub("_", f"Device {dev}")[:31].rstrip()
        name, n = base, 1
        while name.lower() in used:
            n += 1
            suffix = f" ~{n}"
            name = base[: 31 - len(suffix)] + suffix
        used.add(name.lower())
        out[dev] = name
    return out


def _devices(b: _Book) -> None:
    c = b.content
    energy = {d["device_id"]: d for d in c["energy"]["devices"]} if c.get("energy") else {}
    props: dict[str, list[dict[str, Any]]] = {}
    for item in c["properties"]["items"] if c.get("properties") else []:
        props.setdefault(item["device_id"], []).append(item)
    alerts = c.get("alerts")
    alert_counts = {r["device_id"]: r["count"] for r in alerts["by_device"]} if alerts else {}
    open_by_device: dict[str, list[dict[str, Any]]] = {}
    for a in alerts["open"] if alerts else []:
        open_by_device.setdefault(a["device_id"], []).append(a)
    for dev, title in b.device_sheets.items():
        ws = b.sheet(title)
        d = energy.get(dev)
        row = 1
        if d is not None:
            _table(ws, _energy_columns(b), [_energy_row(b, d)], main=False)
            row = 4
        else:
            ws.cell(row=1, column=1, value="Device id").font = BOLD
            ws.cell(row=1, column=2, value=dev)
            row = 3
        ws.freeze_panes = "A2"
        items = props.get(dev, [])
        if items:
            ws.cell(row=row, column=1, value="Properties").font = BOLD
            _table(ws, _property_columns(), [_property_row(i) for i in items], row=row + 1, main=False)
            ws.auto_filter.ref = f"A{row + 1}:I{row + 1 + len(items)}"
            row += len(items) + 3
        if alerts is not None:
            ws.cell(row=row, column=1, value="Alerts in the period").font = BOLD
            ws.cell(row=row, column=2, value=alert_counts.get(dev, 0)).number_format = INT
            row += 2
            opened = open_by_device.get(dev, [])
            if opened:
                ws.cell(row=row, column=1, value="Open alerts").font = BOLD
                _table(ws, _alert_columns(b), [_alert_row(b, a) for a in opened], row=row + 1, main=False)
        back = ws.cell(row=1, column=14, value="← Energy" if energy else "← Summary")
        back.hyperlink = Hyperlink(ref=back.coordinate, location="'Energy'!A1" if energy else "'Summary'!A1")
        back.font = LINK_FONT
        _fit_widths(ws)


# --- writing ---------------------------------------------------------------------------------------------------


class _FixedZip(ZipFile):
    """Every archive member stamped with the report's generation time, so the same content gives the same bytes."""

    def __init__(self, file: io.BytesIO, when: datetime) -> None:
        super().__init__(file, "w", ZIP_DEFLATED)
        self.when = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None, compresslevel: Any = None) -> None:
        if isinstance(zinfo_or_arcname, str):
            zinfo_or_arcname = ZipInfo(zinfo_or_arcname, date_time=self.when)
            zinfo_or_arcname.compress_type = ZIP_DEFLATED
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)


class _MemoryWriter(ExcelWriter):
    """openpyxl's writer, but sheets are built in memory instead of temporary files on disk."""

    def write_worksheet(self, ws: Worksheet) -> None:
        from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
        from openpyxl.worksheet._writer import WorksheetWriter

        ws._drawing = SpreadsheetDrawing()
        ws._drawing.charts = ws._charts
        ws._drawing.images = ws._images
        out = io.BytesIO()
        writer = WorksheetWriter(ws, out=out)
        writer.write()
        ws._rels = writer._rels
        self._archive.writestr(ws.path[1:], out.getvalue())
        self.manifest.append(ws)


def render_excel(content: dict[str, Any]) -> bytes:
    """The report as an .xlsx workbook (bytes). The content is validated first."""
    validate(content)
    b = _Book(content)
    generated = b.time(content["report"]["generated_at"]) or datetime(2000, 1, 1)
    b.wb.properties.creator = "FactoryOps"
    b.wb.properties.title = content["report"]["title"]
    b.wb.properties.created = b.wb.properties.modified = generated
    device_ids: list[str] = []
    if content.get("energy"):
        device_ids += [d["device_id"] for d in content["energy"]["devices"]]
    if content.get("properties"):
        device_ids += [i["device_id"] for i in content["properties"]["items"]]
    fixed = {"Summary", "Energy", "Daily", "Weekday", "Shifts", "Tariff", "Load curve", "Properties", "Alerts",
             "Alerts by rule", "Alerts by device", "Longest alerts", "Open alerts", "Analytics",
             "Analytics metrics"}  # fmt: skip
    b.device_sheets = _sheet_names(list(dict.fromkeys(device_ids)), fixed)
    _summary(b)
    if content.get("energy") is not None:
        _energy(b)
        _energy_detail(b)
    if content.get("properties") is not None:
        _properties(b)
    if content.get("alerts") is not None:
        _alerts(b)
    if content.get("analytics") is not None:
        _analytics(b)
    _devices(b)
    buf = io.BytesIO()
    with _FixedZip(buf, generated) as archive:
        _MemoryWriter(b.wb, archive).save()
    return buf.getvalue()
