"""Charts for the PDF (matplotlib to PNG in memory) and the helpers the PDF and Excel renderers share.

Charts are drawn for print: dark and light grays with hatching carry the meaning, so a grayscale
printout reads the same as the screen; colour is only an accent.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import matplotlib

matplotlib.use("Agg")  # no display; must come before anything imports pyplot

from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

TOP_DEVICES = 15
DPI = 150
WIDTH_IN = 6.7  # A4 text width at 2 cm margins
INK = "#1f3b57"  # dark blue-gray: prints as near-black
LIGHT = "#9db4c8"  # light blue-gray: prints as light gray
ACCENT = "#c0392b"  # the peak marker: red on screen, dark gray on paper
WEEKEND = {5, 6}


# --- shared helpers -------------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo | None:
    """The factory's zone, or None if the name is unknown here (then times keep the offset they carry)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_naive(ts: str | None, tz: ZoneInfo | None) -> datetime | None:
    """A content timestamp as the factory's wall-clock time without zone (what Excel and the charts can show)."""
    if ts is None:
        return None
    parsed = datetime.fromisoformat(ts)
    if tz is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz)
    return parsed.replace(tzinfo=None)


def parse_date(value: str) -> date:
    return date.fromisoformat(value)


def top_devices(devices: Sequence[dict[str, Any]], n: int = TOP_DEVICES) -> list[tuple[str, float]]:
    """The ``n`` largest consumers by kWh, then one "Others (k devices)" bar; devices without data are skipped."""
    known = [d for d in devices if d.get("kwh") is not None]
    known.sort(key=lambda d: (-float(d["kwh"]), str(d["device_id"])))
    out = [(str(d.get("name") or d["device_id"]), float(d["kwh"])) for d in known[:n]]
    rest = known[n:]
    if rest:
        out.append((f"Others ({len(rest)} devices)", sum(float(d["kwh"]) for d in rest)))
    return out


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- charts ---------------------------------------------------------------------------------------------------


def _figure(height_in: float = 2.6) -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    _style(ax)
    return fig, ax


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=7.5)
    ax.grid(axis="y", color="#d0d0d0", linewidth=0.5)
    ax.set_axisbelow(True)


def _thousands(ax_axis: Any) -> None:
    ax_axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _date_axis(axis: Any, max_ticks: int) -> None:
    """Day and month on the ticks (a report spans days to months; the year is on the cover)."""
    axis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=max_ticks))
    axis.set_major_formatter(mdates.DateFormatter("%d %b"))


def _png(fig: Figure) -> bytes:
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    # no "Software" stamp: the bytes depend only on the data
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def load_curve(points: Sequence[dict[str, Any]], tz: ZoneInfo | None) -> bytes | None:
    """Hourly demand over the period with the peak marked."""
    pts = [(local_naive(p["ts"], tz), p["kw"]) for p in points if p.get("kw") is not None]
    if not pts:
        return None
    xs = [p[0] for p in pts]
    ys = [float(p[1]) for p in pts]
    fig, ax = _figure()
    ax.plot(xs, ys, color=INK, linewidth=0.8)
    ax.fill_between(xs, ys, color=LIGHT, alpha=0.45, linewidth=0)
    i = max(range(len(ys)), key=ys.__getitem__)
    ax.plot([xs[i]], [ys[i]], marker="v", color=ACCENT, markersize=6, markeredgecolor="black")
    ax.annotate(
        f"peak {ys[i]:,.0f} kW", (mdates.date2num(xs[i]), ys[i]), xytext=(6, 2), textcoords="offset points", fontsize=7
    )
    ax.set_ylabel("kW", fontsize=8)
    ax.set_ylim(bottom=0, top=max(ys) * 1.12 or 1)
    _thousands(ax.yaxis)
    _date_axis(ax.xaxis, 10)
    return _png(fig)


def devices_bar(devices: Sequence[dict[str, Any]]) -> bytes | None:
    """Consumption per device, largest first: the top 15 and the rest as one bar."""
    bars = top_devices(devices)
    if not bars:
        return None
    fig, ax = _figure(0.8 + 0.22 * len(bars))
    labels = [shorten(b[0], 38) for b in bars][::-1]
    values = [b[1] for b in bars][::-1]
    colours = [LIGHT if lab.startswith("Others (") else INK for lab in labels]
    hatches = ["///" if lab.startswith("Others (") else "" for lab in labels]
    rects = ax.barh(range(len(values)), values, color=colours, edgecolor="black", linewidth=0.4)
    for rect, hatch in zip(rects, hatches, strict=True):
        rect.set_hatch(hatch)
    ax.set_yticks(range(len(values)), labels)
    ax.grid(axis="x", color="#d0d0d0", linewidth=0.5)
    ax.grid(axis="y", visible=False)
    _thousands(ax.xaxis)
    ax.set_xlabel("kWh", fontsize=8)
    top = max(values) or 1.0
    for y, v in enumerate(values):
        ax.text(v + top * 0.01, y, f"{v:,.0f}", va="center", fontsize=6.5)
    ax.set_xlim(0, top * 1.15)
    return _png(fig)


def daily_bar(by_day: Sequence[dict[str, Any]]) -> bytes | None:
    """kWh per day; weekends hatched and light so they stand out in gray too."""
    rows = [(parse_date(d["date"]), d["kwh"]) for d in by_day if d.get("kwh") is not None]
    if not rows:
        return None
    fig, ax = _figure()
    for weekend in (False, True):
        sel = [(d, float(v)) for d, v in rows if (d.weekday() in WEEKEND) == weekend]
        if sel:
            ax.bar(
                [d for d, _ in sel],
                [v for _, v in sel],
                width=0.8,
                color=LIGHT if weekend else INK,
                hatch="///" if weekend else None,
                edgecolor="black",
                linewidth=0.3,
                label="Weekend" if weekend else "Weekday",
            )
    ax.set_ylabel("kWh", fontsize=8)
    _thousands(ax.yaxis)
    _date_axis(ax.xaxis, 12)
    ax.set_ylim(0, max(float(v) for _, v in rows) * 1.18 or 1)
    ax.legend(fontsize=7, frameon=False, loc="upper right", ncols=2)
    return _png(fig)


def category_bar(
    labels: Sequence[str], values: Sequence[float | None], unit: str, *,
    secondary: Sequence[float | None] | None = None,
    secondary_label: str = "", primary_label: str = "",
) -> bytes | None:  # fmt: skip
    """A plain bar chart by category (weekday, shift, tariff band); an optional second series is hatched."""
    if not labels or all(v is None for v in values):
        return None
    fig, ax = _figure(2.3)
    xs = list(range(len(labels)))
    vals = [float(v) if v is not None else 0.0 for v in values]
    width = 0.4 if secondary is not None else 0.65
    offset = width / 2 if secondary is not None else 0.0
    ax.bar(
        [x - offset for x in xs], vals, width=width, color=INK, edgecolor="black", linewidth=0.4, label=primary_label
    )
    ax.set_ylabel(unit, fontsize=8)
    _thousands(ax.yaxis)
    if secondary is not None:
        ax2 = ax.twinx()
        ax2.spines["top"].set_visible(False)
        ax2.tick_params(labelsize=7.5)
        sec = [float(v) if v is not None else 0.0 for v in secondary]
        ax2.bar(
            [x + offset for x in xs], sec, width=width, color=LIGHT, hatch="///", edgecolor="black", linewidth=0.4,
            label=secondary_label,
        )  # fmt: skip
        ax2.set_ylabel(secondary_label, fontsize=8)
        ax2.set_ylim(0, max(sec) * 1.25 or 1)
        ax.set_ylim(0, max(vals) * 1.25 or 1)
        _thousands(ax2.yaxis)
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles, [primary_label, secondary_label], fontsize=7, frameon=False, loc="upper right")
    ax.set_xticks(xs, [shorten(str(lab), 20) for lab in labels])
    return _png(fig)


def alerts_chart(over_time: Sequence[dict[str, Any]], by_severity: dict[str, int]) -> bytes | None:
    """Alerts per day (left) and the period's split by severity (right, each severity its own shade and hatch)."""
    if not over_time and not any(by_severity.values()):
        return None
    fig = Figure(figsize=(WIDTH_IN, 2.4), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 3)
    ax = fig.add_subplot(grid[0, :2])
    _style(ax)
    if over_time:
        days = [mdates.date2num(parse_date(o["date"])) for o in over_time]
        ax.bar(days, [o["count"] for o in over_time], color=INK, width=0.8)
        _date_axis(ax.xaxis, 8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("alerts per day", fontsize=8)
    ax2 = fig.add_subplot(grid[0, 2])
    _style(ax2)
    sev = ["critical", "warning", "info"]
    counts = [by_severity.get(s, 0) for s in sev]
    rects = ax2.bar(sev, counts, color=["#222222", "#777777", "#dddddd"], edgecolor="black", linewidth=0.4)
    for rect, hatch in zip(rects, ["", "...", "///"], strict=True):
        rect.set_hatch(hatch)
    for x, c in enumerate(counts):
        ax2.text(x, c, str(c), ha="center", va="bottom", fontsize=7)
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_title("by severity", fontsize=8)
    return _png(fig)
