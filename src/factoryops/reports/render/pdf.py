"""The PDF report: an A4 document a plant director prints and files (reportlab platypus, charts from ``charts``).

Layout: cover; executive summary (highlights, KPI tiles against the previous period); one chapter per
section in the content (energy, properties, alerts, analytics) with charts and tables. Every page after
the cover has the factory and period in the footer and "Page n of m". Tables repeat their header row
when they run over a page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    Image,
    KeepTogether,
    LongTable,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from factoryops.reports.render import charts
from factoryops.reports.render.json_out import validate

PAGE_W, PAGE_H = A4
MARGIN = 18 * mm
TEXT_W = PAGE_W - 2 * MARGIN
INK = colors.HexColor(charts.INK)
ZEBRA = colors.HexColor("#eef2f5")
RULE = colors.HexColor("#b8c4ce")
GOOD = colors.HexColor("#1e7b34")
BAD = colors.HexColor("#b42318")
MUTED = colors.HexColor("#5b6770")
DASH = "\u2013"  # en dash  # shown for an unknown (null) value
MAX_NAME = 120  # characters of a device name shown in tables

# KPI keys where a fall is good news (energy, money, emissions, alerts) and where a rise is;
# any other key gets a neutral arrow. Matched as substrings of the KPI key.
LOWER_IS_BETTER = ("kwh", "cost", "co2", "peak", "average_kw", "alert", "mtta", "mttr", "open", "gap", "reset")
HIGHER_IS_BETTER = ("load_factor", "completeness", "savings", "power_factor")


# --- fonts: DejaVu (shipped with matplotlib) so device names in any Latin, Greek or Cyrillic script print ---

_FONT, _BOLD = "DejaVuSans", "DejaVuSans-Bold"


def _register_fonts() -> None:
    if _FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(_FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(_FONT, normal=_FONT, bold=_BOLD, italic=_FONT, boldItalic=_BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=_FONT, fontSize=9.5, leading=13, alignment=TA_LEFT)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=10.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9, splitLongWords=1),
        "cellsmall": ParagraphStyle("cellsmall", parent=base, fontSize=6.5, leading=8, textColor=MUTED),
        "h1": ParagraphStyle("h1", parent=base, fontName=_BOLD, fontSize=17, leading=22, spaceAfter=8, textColor=INK),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName=_BOLD, fontSize=11.5, leading=15, spaceBefore=10, spaceAfter=5
        ),
        "bullet": ParagraphStyle(
            "bullet", parent=base, leftIndent=12, bulletIndent=2, spaceAfter=3, bulletFontName=_FONT
        ),
        "cover_title": ParagraphStyle("ct", parent=base, fontName=_BOLD, fontSize=30, leading=36, textColor=INK),
        "cover_factory": ParagraphStyle("cf", parent=base, fontName=_BOLD, fontSize=20, leading=26, spaceBefore=6),
        "cover_line": ParagraphStyle("cl", parent=base, fontSize=12, leading=18),
        "tile_label": ParagraphStyle("tl", parent=base, fontSize=8, leading=10, textColor=MUTED),
        "tile_value": ParagraphStyle("tv", parent=base, fontName=_BOLD, fontSize=14, leading=18),
        "tile_change": ParagraphStyle("tc", parent=base, fontSize=8, leading=10),
    }


# --- formatting ----------------------------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int | None = None) -> str:
    """Thousands separators; no decimals for big numbers, one or two for small ones."""
    if value is None:
        return DASH
    v = float(value)
    if digits is None:
        digits = 0 if abs(v) >= 100 or v.is_integer() else 1 if abs(v) >= 10 else 2
    return f"{v:,.{digits}f}"


def fmt_kwh(value: float | None) -> str:
    return DASH if value is None else f"{fmt_num(value)} kWh"


def fmt_money(value: float | None, currency: str) -> str:
    return DASH if value is None else f"{float(value):,.2f} {currency}"


def fmt_pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{float(value):+.1f} %" if signed else f"{float(value):.1f} %"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s"
    minutes = s / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h"


class _Clock:
    """Formats content timestamps as the factory's local time (the reader's time)."""

    def __init__(self, tz: ZoneInfo | None) -> None:
        self.tz = tz

    def at(self, ts: str | None, pattern: str = "%d %b %Y %H:%M") -> str:
        local = charts.local_naive(ts, self.tz)
        return DASH if local is None else local.strftime(pattern)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


# --- page furniture ------------------------------------------------------------------------------------------


def _canvas_class(footer: str, pdf_date: str) -> type[Canvas]:
    """A canvas that holds pages back until the end, so each can say "Page n of m"; the cover gets no footer."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["invariant"] = 1  # no random document id, no clock: same content, same bytes
            super().__init__(*args, **kwargs)
            self._doc.setDateFormatter(lambda *_: pdf_date)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                if self._pageNumber > 1:
                    self._footer(self._pageNumber, total)
                super().showPage()
            super().save()

        def _footer(self, number: int, total: int) -> None:
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, 13 * mm, PAGE_W - MARGIN, 13 * mm)
            self.setFont(_FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, 9 * mm, charts.shorten(footer, 110))
            self.drawRightString(PAGE_W - MARGIN, 9 * mm, f"Page {number} of {total}")
            self.restoreState()

    return NumberedCanvas


def _pdf_date(generated_at: str) -> str:
    ts = datetime.fromisoformat(generated_at)
    offset = ts.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hh, mm_ = divmod(abs(minutes), 60)
    return f"D:{ts:%Y%m%d%H%M%S}{sign}{hh:02d}'{mm_:02d}'"


def _cover_band(canvas: Canvas, _doc: Any) -> None:
    canvas.saveState()
    canvas.setFillColor(INK)
    canvas.rect(0, PAGE_H - 38 * mm, PAGE_W, 38 * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont(_BOLD, 13)
    canvas.drawString(MARGIN, PAGE_H - 22 * mm, "FactoryOps")
    canvas.setFont(_FONT, 9)
    canvas.drawString(MARGIN, PAGE_H - 28 * mm, "Energy intelligence report")
    canvas.restoreState()


# --- building blocks -----------------------------------------------------------------------------------------


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float], *, numeric: Sequence[int] = ()
) -> Table:
    """A zebra table whose header row repeats on each page it spans; ``numeric`` columns are right-aligned."""
    st = _styles()
    head = [
        Paragraph(f"<b>{escape(h)}</b>", ParagraphStyle("th", parent=st["cell"], textColor=colors.white))
        for h in header
    ]
    data: list[Sequence[Any]] = [head, *rows]
    cls = LongTable if len(rows) > 50 else Table
    table = cls(data, colWidths=list(widths), repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), INK),
        ("FONT", (0, 1), (-1, -1), _FONT, 7.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
    ]
    for col in numeric:
        style.append(("ALIGN", (col, 1), (col, -1), "RIGHT"))
    table.setStyle(TableStyle(style))
    return table


def _chart(png: bytes | None, caption: str, empty: str) -> list[Any]:
    st = _styles()
    if png is None:
        return [_p(caption, st["h2"]), _p(empty, st["small"])]
    w, h = ImageReader(io.BytesIO(png)).getSize()
    height = TEXT_W * h / w
    return [KeepTogether([_p(caption, st["h2"]), Image(io.BytesIO(png), width=TEXT_W, height=height)])]


def _key_figures(pairs: Sequence[tuple[str, str]]) -> Table:
    """Two label/value pairs per row: the section's headline numbers."""
    st = _styles()
    cells = [[_p(k, st["tile_label"]), Paragraph(f"<b>{escape(v)}</b>", st["body"])] for k, v in pairs]
    rows = [cells[i] + (cells[i + 1] if i + 1 < len(cells) else ["", ""]) for i in range(0, len(cells), 2)]
    table = Table(rows, colWidths=[TEXT_W * 0.2, TEXT_W * 0.3, TEXT_W * 0.2, TEXT_W * 0.3])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE)]))
    return table


def _direction(key: str) -> int:
    """+1 where a rise is good, -1 where a fall is good, 0 when the KPI has no better direction."""
    k = key.lower()
    if any(s in k for s in HIGHER_IS_BETTER):
        return 1
    if any(s in k for s in LOWER_IS_BETTER):
        return -1
    return 0


def _kpi_value(kpi: dict[str, Any], currency: str) -> str:
    value, unit = kpi.get("value"), kpi.get("unit") or ""
    if value is None:
        return DASH
    if unit == currency:
        return fmt_money(value, currency)
    if unit == "" and float(value).is_integer() and kpi["key"] != "load_factor":
        return fmt_num(value, 0)  # a count: 3 alerts, not 3.00
    if kpi["key"] == "load_factor" or (unit == "" and abs(float(value)) < 10):
        return fmt_num(value, 2) + (f" {unit}" if unit else "")
    return fmt_num(value) + (f" {unit}" if unit else "")


def _kpi_tiles(kpis: Sequence[dict[str, Any]], currency: str) -> Table | None:
    if not kpis:
        return None
    st = _styles()
    tiles: list[Any] = []
    for kpi in kpis:
        change = kpi.get("change_pct")
        if change is None:
            change_text = "no comparison" if kpi.get("previous") is None else "unchanged"
            colour = MUTED
        else:
            arrow = "▲" if change > 0 else "▼" if change < 0 else "■"
            good = _direction(str(kpi["key"])) * (1 if change > 0 else -1 if change < 0 else 0)
            colour = GOOD if good > 0 else BAD if good < 0 else MUTED
            change_text = f"{arrow} {fmt_pct(change, signed=True)} vs previous period"
        previous = kpi.get("previous")
        prev_text = f"previous: {_kpi_value({**kpi, 'value': previous}, currency)}" if previous is not None else ""
        tiles.append(
            [
                _p(str(kpi.get("label") or kpi["key"]), st["tile_label"]),
                _p(_kpi_value(kpi, currency), st["tile_value"]),
                Paragraph(f'<font color="{colour.hexval()}">{escape(change_text)}</font>', st["tile_change"]),
                _p(prev_text, st["small"]),
            ]
        )
    per_row = 3
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    rows[-1] += [""] * (per_row - len(rows[-1]))
    table = Table(rows, colWidths=[TEXT_W / per_row] * per_row)
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    return table


# --- chapters ------------------------------------------------------------------------------------------------


def _cover(content: dict[str, Any], clock: _Clock) -> list[Any]:
    st = _styles()
    rep = content["report"]
    period = rep["period"]
    devices = rep.get("devices")
    scope = "All devices of the factory" if devices is None else f"{len(devices)} selected device(s)"
    if devices:
        scope += ": " + charts.shorten(", ".join(devices), 300)
    names = {"energy": "energy", "properties": "properties", "alerts": "alerts", "analytics": "analytics"}
    sections = ", ".join(names[s] for s in rep["sections"]) or "summary only"
    tariff = rep["tariff"]
    if tariff["kind"] == "flat":
        tariff_text = f"flat {fmt_num(tariff.get('flat_price'), 4)} {rep['currency']}/kWh"
    elif tariff["kind"] == "time_of_use":
        tariff_text = "time of use: " + ", ".join(
            f"{b['name']} {fmt_num(b['price'], 4)} {rep['currency']}/kWh" for b in tariff.get("bands", [])
        )
        if tariff.get("default_price") is not None:
            tariff_text += f"; other times {fmt_num(tariff['default_price'], 4)} {rep['currency']}/kWh"
    else:
        tariff_text = "none set for this factory (costs are not calculated)"
    lines = [
        f"Period: {period['label']} ({clock.at(period['start'], '%d %b %Y %H:%M')} to "
        f"{clock.at(period['end'], '%d %b %Y %H:%M')})",
        f"Generated: {clock.at(rep['generated_at'])} ({rep['factory']['timezone']})",
        f"Scope: {scope}",
        f"Sections: {sections}",
        f"Tariff: {tariff_text}",
        f"Emission factor: {fmt_num(rep['emission_factor_kg_per_kwh'], 3)} kg CO2 per kWh",
    ]
    out: list[Any] = [
        Spacer(1, 40 * mm),
        _p(rep["title"], st["cover_title"]),
        _p(rep["factory"]["name"], st["cover_factory"]),
    ]
    out.append(Spacer(1, 10 * mm))
    out += [_p(line, st["cover_line"]) for line in lines]
    out.append(Spacer(1, 12 * mm))
    out.append(
        _p(
            f"All times are local times of the factory ({rep['factory']['timezone']}). "
            f"Report {rep['id']}, content schema {content['schema_version']}.",
            st["small"],
        )
    )
    return out


def _summary(content: dict[str, Any]) -> list[Any]:
    st = _styles()
    out: list[Any] = [_p("Executive summary", st["h1"])]
    for line in content["summary"]["highlights"]:
        out.append(Paragraph(escape(line), st["bullet"], bulletText="•"))
    tiles = _kpi_tiles(content["summary"]["kpis"], content["report"]["currency"])
    if tiles is not None:
        out += [Spacer(1, 6 * mm), _p("Key figures", st["h2"]), tiles]
        out.append(
            _p("Green: better than the previous period; red: worse. Arrows show the direction of change.", st["small"])
        )
    return out


def _energy(content: dict[str, Any], clock: _Clock) -> list[Any]:
    st = _styles()
    e = content["energy"]
    cur = content["report"]["currency"]
    tz = clock.tz
    peak = f"{fmt_num(e['peak_kw'])} kW" if e["peak_kw"] is not None else DASH
    if e["peak_kw"] is not None and e["peak_at"]:
        peak += f" on {clock.at(e['peak_at'])}"
    names = {d["device_id"]: d.get("name") or d["device_id"] for d in e["devices"]}
    out: list[Any] = [PageBreak(), _p("Energy", st["h1"])]
    out.append(
        _key_figures(
            [
                ("Total consumption", fmt_kwh(e["total_kwh"])),
                ("Previous period", fmt_kwh(e["previous_total_kwh"])),
                ("Change", fmt_pct(e["change_pct"], signed=True)),
                ("Cost", fmt_money(e["cost"], cur)),
                ("Previous cost", fmt_money(e["previous_cost"], cur)),
                ("CO2", DASH if e["co2_kg"] is None else f"{fmt_num(e['co2_kg'] / 1000, 1)} t"),
                ("Peak demand", peak),
                ("Peak device", charts.shorten(str(names.get(e["peak_device"], e["peak_device"] or DASH)), 60)),
                ("Average demand", DASH if e["average_kw"] is None else f"{fmt_num(e['average_kw'])} kW"),
                ("Load factor", fmt_num(e["load_factor"], 2)),
            ]
        )
    )
    out += _chart(charts.load_curve(e["load_curve"], tz), "Load curve (hourly demand)", "No demand data in the period.")
    out += _chart(charts.daily_bar(e["by_day"]), "Daily consumption", "No daily consumption in the period.")
    n_known = sum(1 for d in e["devices"] if d.get("kwh") is not None)
    caption = "Consumption per device" + (
        f" (top {charts.TOP_DEVICES} of {n_known} and the others)" if n_known > charts.TOP_DEVICES else ""
    )
    out += _chart(charts.devices_bar(e["devices"]), caption, "No device reported consumption in the period.")
    wd = e["by_weekday"]
    out += _chart(
        charts.category_bar([w["weekday"][:3] for w in wd], [w["mean_kwh"] for w in wd], "kWh per day"),
        "Average consumption by day of week",
        "No consumption by day of week.",
    )
    sh = e["by_shift"]
    out += _chart(
        charts.category_bar([s["shift"] for s in sh], [s["kwh"] for s in sh], "kWh"),
        "Consumption by shift",
        "No shifts defined for this factory.",
    )
    tb = e["by_tariff_band"]
    out += _chart(
        charts.category_bar(
            [b["band"] for b in tb], [b["kwh"] for b in tb], "kWh", secondary=[b["cost"] for b in tb],
            secondary_label=cur, primary_label="kWh",
        ),
        "Consumption and cost by tariff band",
        "No tariff band breakdown.",
    )  # fmt: skip
    out.append(_p("Devices", st["h2"]))
    if not e["devices"]:
        out.append(_p("No devices in this report.", st["small"]))
        return out
    rows = []
    for d in e["devices"]:
        name = charts.shorten(str(d.get("name") or d["device_id"]), MAX_NAME)
        cell = [_p(name, st["cell"])]
        if d.get("name") and d["name"] != d["device_id"]:
            cell.append(_p(charts.shorten(d["device_id"], MAX_NAME), st["cellsmall"]))
        rows.append(
            [
                cell,
                fmt_num(d["kwh"]),
                fmt_pct(d["share_pct"]),
                fmt_num(d["peak_kw"]),
                clock.at(d["peak_at"], "%d %b %H:%M"),
                fmt_num(d["cost"], 2),
                fmt_num(d["co2_kg"]),
                d["method"],
                f"{d['counter_resets']} / {d['gaps']}",
                fmt_pct(d["completeness_pct"]),
            ]
        )
    widths = [35, 16, 12, 13, 19, 19, 15, 15, 13, 15]
    out.append(
        _table(
            ["Device", "kWh", "Share", "Peak kW", "Peak at", f"Cost ({cur})", "CO2 kg", "Method", "Resets/ gaps",
             "Complete"],
            rows,
            [w * TEXT_W / sum(widths) for w in widths],
            numeric=[1, 2, 3, 5, 6, 8, 9],
        )
    )  # fmt: skip
    out.append(
        _p(
            "Method: counter = from the cumulative energy counter (resets and gaps handled); power = power integrated "
            "over time; none = no energy data. Complete = share of expected readings received.",
            st["small"],
        )
    )
    return out


def _properties(content: dict[str, Any]) -> list[Any]:
    st = _styles()
    items = content["properties"]["items"]
    out: list[Any] = [PageBreak(), _p("Properties", st["h1"])]
    if not items:
        return [*out, _p("No properties were chosen for this report.", st["small"])]
    rows = [
        [
            _p(charts.shorten(i["device_id"], MAX_NAME), st["cell"]),
            _p(i["property"], st["cell"]),
            i["unit"] or "",
            fmt_num(i["min"]),
            fmt_num(i["mean"]),
            fmt_num(i["max"]),
            f"{i['count']:,}",
            DASH if i["expected"] is None else f"{i['expected']:,}",
            fmt_pct(i["completeness_pct"]),
        ]
        for i in items
    ]
    widths = [34, 34, 10, 15, 15, 15, 15, 15, 14]
    out.append(
        _table(
            ["Device", "Property", "Unit", "Min", "Mean", "Max", "Readings", "Expected", "Complete"],
            rows,
            [w * TEXT_W / sum(widths) for w in widths],
            numeric=[3, 4, 5, 6, 7, 8],
        )
    )
    return out


def _alert_rows(alerts: Sequence[dict[str, Any]], clock: _Clock) -> list[list[Any]]:
    st = _styles()
    return [
        [
            _p(a["rule_name"], st["cell"]),
            _p(charts.shorten(a["device_id"] or DASH, MAX_NAME), st["cell"]),
            a["severity"],
            clock.at(a["opened_at"]),
            clock.at(a["resolved_at"]) if a["resolved_at"] else "still open",
            fmt_duration(a["duration_seconds"]),
        ]
        for a in alerts
    ]


def _alerts(content: dict[str, Any], clock: _Clock) -> list[Any]:
    st = _styles()
    a = content["alerts"]
    sev = a["by_severity"]
    out: list[Any] = [PageBreak(), _p("Alerts", st["h1"])]
    out.append(
        _key_figures(
            [
                ("Alerts raised", f"{a['total']:,}"),
                ("Still open", f"{len(a['open']):,}"),
                ("Critical / warning / info", f"{sev['critical']} / {sev['warning']} / {sev['info']}"),
                ("", ""),
                ("Mean time to acknowledge", fmt_duration(a["mtta_seconds"])),
                ("Mean time to resolve", fmt_duration(a["mttr_seconds"])),
            ]
        )
    )
    out += _chart(charts.alerts_chart(a["over_time"], sev), "Alerts over time", "No alerts in the period.")
    alert_widths = [38, 26, 14, 22, 22, 18]
    alert_widths = [w * TEXT_W / sum(alert_widths) for w in alert_widths]
    alert_header = ["Rule", "Device", "Severity", "Opened", "Resolved", "Duration"]
    for title, rows_in, empty in [
        ("Longest alerts", a["longest"], "No alerts in the period."),
        ("Alerts still open", a["open"], "No alert is open."),
    ]:
        out.append(_p(title, st["h2"]))
        if rows_in:
            out.append(_table(alert_header, _alert_rows(rows_in, clock), alert_widths, numeric=[5]))
        else:
            out.append(_p(empty, st["small"]))
    out.append(_p("By rule", st["h2"]))
    if a["by_rule"]:
        rows = [[_p(r["rule_name"], st["cell"]), f"{r['count']:,}"] for r in a["by_rule"]]
        out.append(_table(["Rule", "Alerts"], rows, [TEXT_W * 0.75, TEXT_W * 0.25], numeric=[1]))
    else:
        out.append(_p("No alerts in the period.", st["small"]))
    out.append(_p("By device", st["h2"]))
    if a["by_device"]:
        rows = [
            [_p(charts.shorten(r["device_id"] or DASH, MAX_NAME), st["cell"]), f"{r['count']:,}"]
            for r in a["by_device"]
        ]
        out.append(_table(["Device", "Alerts"], rows, [TEXT_W * 0.75, TEXT_W * 0.25], numeric=[1]))
    else:
        out.append(_p("No alerts in the period.", st["small"]))
    return out


def _metric_text(metrics: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {fmt_num(v, None if v is None or abs(v) >= 1 else 3)}" for k, v in metrics.items())


def _analytics(content: dict[str, Any], clock: _Clock) -> list[Any]:
    st = _styles()
    runs = content["analytics"]["runs"]
    out: list[Any] = [PageBreak(), _p("Analytics", st["h1"])]
    if not runs:
        return [*out, _p("No analytics runs finished in the period.", st["small"])]
    rows = []
    for r in runs:
        model = r["model_name"] + (f" v{r['model_version']}" if r["model_version"] is not None else "")
        rows.append(
            [
                [_p(f"{r['task']} ({r['mode']})", st["cell"]), _p(model, st["cellsmall"])],
                [_p(r["headline"], st["cell"]), _p(_metric_text(r["metrics"]), st["cellsmall"])],
                _p(r["dataset_name"] or DASH, st["cell"]),
                clock.at(r["finished_at"]),
            ]
        )
    widths = [30, 80, 30, 22]
    out.append(
        _table(["Task / model", "Result", "Data set", "Finished"], rows, [w * TEXT_W / sum(widths) for w in widths])
    )
    return out


# --- entry point ---------------------------------------------------------------------------------------------


def render_pdf(content: dict[str, Any]) -> bytes:
    """The report as an A4 PDF (bytes). The content is validated first; its dates set the PDF's dates."""
    validate(content)
    _register_fonts()
    rep = content["report"]
    clock = _Clock(charts.zone(rep["factory"]["timezone"]))
    footer = f"{rep['factory']['name']} · {rep['title']} · {rep['period']['label']}"
    buf = io.BytesIO()
    doc = BaseDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 2 * mm,
        title=f"{rep['title']} \u2013 {rep['factory']['name']} \u2013 {rep['period']['label']}",
        author="FactoryOps",
        subject=f"{rep['factory']['name']}, {rep['period']['label']}",
        creator="FactoryOps reports",
        invariant=1,
    )
    frame = Frame(MARGIN, MARGIN + 2 * mm, TEXT_W, PAGE_H - 2 * MARGIN - 2 * mm, id="body")
    doc.addPageTemplates(
        [PageTemplate(id="cover", frames=[frame], onPage=_cover_band), PageTemplate(id="body", frames=[frame])]
    )
    story: list[Any] = [*_cover(content, clock), NextPageTemplate("body"), PageBreak(), *_summary(content)]
    chapters: dict[str, Callable[[], list[Any]]] = {
        "energy": lambda: _energy(content, clock),
        "properties": lambda: _properties(content),
        "alerts": lambda: _alerts(content, clock),
        "analytics": lambda: _analytics(content, clock),
    }
    for name, build in chapters.items():
        if content.get(name) is not None:
            story += build()
    doc.build(story, canvasmaker=_canvas_class(footer, _pdf_date(rep["generated_at"])))
    return buf.getvalue()
