"""Report renderers (issue 6): the sample report in PDF, Excel and JSON, read back with independent readers.

pypdf reads the PDF's text, pypdfium2 renders its pages, openpyxl and LibreOffice open the workbook,
jsonschema checks the JSON; edge cases: empty and missing sections, nulls, long names, 1,000 devices.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pypdf
import pypdfium2 as pdfium
import pytest
from jsonschema import Draft202012Validator

from factoryops.reports.render import SCHEMA, render_excel, render_json, render_pdf, validate
from factoryops.reports.render.charts import TOP_DEVICES, top_devices
from factoryops.reports.sample import sample_content
from factoryops.reports.service import render

ROOT = Path(__file__).resolve().parents[1]
SECTION_SHEETS = ["Energy", "Daily", "Weekday", "Shifts", "Tariff", "Load curve", "Properties", "Alerts",
                  "Alerts by rule", "Alerts by device", "Longest alerts", "Open alerts", "Analytics",
                  "Analytics metrics"]  # fmt: skip
CHART_SHEETS = ["Energy", "Daily", "Weekday", "Shifts", "Tariff", "Load curve", "Alerts"]

pytestmark = pytest.mark.nodb  # rendering only: no metadata database


@pytest.fixture(scope="module")
def content() -> dict[str, Any]:
    return sample_content()


@pytest.fixture(scope="module")
def pdf_bytes(content: dict[str, Any]) -> bytes:
    return render_pdf(content)


@pytest.fixture(scope="module")
def xlsx_bytes(content: dict[str, Any]) -> bytes:
    return render_excel(content)


def pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def pdf_pages_fast(data: bytes) -> list[str]:
    """Page texts through pdfium (C, fast enough for a 40-page document)."""
    doc = pdfium.PdfDocument(data)
    try:
        out = []
        for i in range(len(doc)):
            textpage = doc[i].get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
        return out
    finally:
        doc.close()


def many_devices(n: int) -> dict[str, Any]:
    """The sample with ``n`` devices (consumption rising with the index) and a property row for each."""
    c = sample_content()
    e = c["energy"]
    template = e["devices"][1]
    weight = n * (n + 1) / 2
    e["devices"] = [
        dict(template, device_id=f"meter-{i:04d}", name=f"Sub-meter {i:04d} hall {i % 7}",
             kwh=round(e["total_kwh"] * (i + 1) / weight, 3), share_pct=round((i + 1) / weight * 100, 4))
        for i in range(n)
    ]  # fmt: skip
    c["properties"]["items"] = [dict(c["properties"]["items"][0], device_id=f"meter-{i:04d}") for i in range(n)]
    return c


# --- schema and JSON ---------------------------------------------------------------------------------------


def test_published_schema_is_the_package_schema_and_valid_draft_2020_12() -> None:
    package = ROOT / "src/factoryops/reports/schema.json"
    assert package.read_bytes() == (ROOT / "docs/report-schema.json").read_bytes()
    assert json.loads(package.read_text("utf-8")) == SCHEMA
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_is_the_content_validated_utf8_and_indented(content: dict[str, Any]) -> None:
    data = render_json(content)
    assert json.loads(data.decode("utf-8")) == content
    assert "°C".encode() in data  # UTF-8, not \\u escapes
    assert b'\n  "report": {' in data
    Draft202012Validator(SCHEMA).validate(json.loads(data))
    assert render_json(copy.deepcopy(content)) == data


def _set(path: str, value: Any) -> Any:
    def mutate(c: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = c
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "where", "words"),
    [
        (_set("energy.total_kwh", KeyError), "$.energy", "'total_kwh' is a required property"),
        (_set("energy.devices.3.kwh", "12.5"), "$.energy.devices[3].kwh", "expected number or null"),
        (_set("alerts.total", 3.5), "$.alerts.total", "expected integer"),
        (_set("report.generated_at", "01/11/2026 06:00"), "$.report.generated_at", "ISO 8601"),
        (_set("energy.by_day.0.date", "2026-10-01T00:00:00+09:00"), "$.energy.by_day[0].date", "a date like"),
        (_set("energy.peak_kw", float("nan")), "$.energy.peak_kw", "not a finite number"),
        (_set("properties", None), "$.properties", "listed in report.sections"),
        (_set("report.sections", ["energy", "alerts", "analytics"]), "$.properties", "must be null"),
        (_set("energy.devices.0.method", "guess"), "$.energy.devices[0].method", "guess"),
        (_set("summary.kpis.0.colour", "green"), "$.summary.kpis[0]", "colour"),
    ],
)
def test_invalid_content_is_refused_naming_the_path(mutate: Any, where: str, words: str) -> None:
    c = sample_content()
    mutate(c)
    for fn in (validate, render_json, render_pdf, render_excel):
        with pytest.raises(ValueError) as err:
            fn(c)
        assert f"{where}:" in str(err.value), str(err.value)
        assert words in str(err.value), str(err.value)


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_text_cover_summary_numbers_and_page_footers(content: dict[str, Any], pdf_bytes: bytes) -> None:
    pages = pdf_pages(pdf_bytes)
    n = len(pages)
    assert 6 <= n <= 14, n
    cover = pages[0]
    assert "Demo Steel Mill" in cover and "Monthly energy report" in cover and "October 2026" in cover
    assert "01 Nov 2026 06:00" in cover  # generated at, local time
    assert "All devices of the factory" in cover
    assert "Page 1 of" not in cover  # no footer on the cover
    for i, text in enumerate(pages[1:], start=2):
        assert f"Page {i} of {n}" in text
        assert "Demo Steel Mill" in text and "October 2026" in text
    assert "Executive summary" in pages[1]
    full = "\n".join(pages)
    titles = ("Executive summary", "Energy", "Load curve", "Consumption per device", "Daily consumption", "Devices",
              "Properties", "Alerts over time", "Longest alerts", "Alerts still open", "Analytics")  # fmt: skip
    for title in titles:
        assert title in full, title
    e = content["energy"]
    full = " ".join(full.split())  # cells wrap lines
    # numbers formatted independently of the renderer's helpers
    assert f"{e['total_kwh']:,.0f} kWh" in full
    assert f"{e['cost']:,.2f} EUR" in full
    assert f"{e['peak_kw']:,.0f} kW on 23 Oct 2026 18:00" in full
    assert f"{e['devices'][0]['kwh']:,.0f}" in full and "Electric arc furnace 1" in full
    assert "electrode_temperature" in full and "1,185" in full  # a property's mean
    assert "Meter offline" in full and "still open" in full
    assert "2 h 36 min" in full  # MTTR 9,342.5 s
    assert "Isolation forest flagged 212 readings" in full
    assert "▼ -1.3 % vs previous period" in pages[1]


def test_pdf_metadata_from_content_and_deterministic(content: dict[str, Any], pdf_bytes: bytes) -> None:
    meta = pypdf.PdfReader(io.BytesIO(pdf_bytes)).metadata
    assert meta is not None
    assert meta["/CreationDate"] == "D:20261101060012+09'00'"
    assert meta["/ModDate"] == "D:20261101060012+09'00'"
    assert "Demo Steel Mill" in meta["/Title"]
    assert render_pdf(copy.deepcopy(content)) == pdf_bytes


def test_pdf_pages_render_to_non_blank_images(pdf_bytes: bytes) -> None:
    doc = pdfium.PdfDocument(pdf_bytes)
    try:
        for i in range(len(doc)):
            image = np.asarray(doc[i].render(scale=0.5).to_pil().convert("L"), dtype=float)
            h, w = image.shape
            assert (w, h) in {(297, 421), (298, 421)}, (w, h)  # A4 at 36 dpi
            ink = (image < 200).mean()
            assert image.std() > 8 and ink > 0.004, (i, image.std(), ink)
    finally:
        doc.close()


# --- Excel -------------------------------------------------------------------------------------------------


def test_excel_sheets_typed_cells_charts_frozen_widths(content: dict[str, Any], xlsx_bytes: bytes) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes))
    device_sheets = [f"Device {d['device_id']}" for d in content["energy"]["devices"]]
    assert wb.sheetnames == ["Summary", *SECTION_SHEETS, *device_sheets]

    summary = wb["Summary"]
    kpi_rows = {row[0].value: row for row in summary.iter_rows(min_row=5, max_row=10)}
    total = kpi_rows["total_kwh"]
    assert isinstance(total[2].value, float) and total[2].value == content["energy"]["total_kwh"]
    assert total[2].number_format == "#,##0.0"
    assert kpi_rows["cost"][2].number_format == "#,##0.00 [$EUR]"
    assert kpi_rows["total_kwh"][5].value == pytest.approx(content["summary"]["kpis"][0]["change_pct"] / 100)
    assert kpi_rows["total_kwh"][5].number_format == "0.0%"
    assert "Asia/Seoul" in summary["A2"].value

    curve = wb["Load curve"]
    assert curve["A1"].value == "Time (local time)"
    first = curve["A2"].value
    assert isinstance(first, datetime) and first == datetime(2026, 10, 1, 0, 0) and first.tzinfo is None
    assert curve.max_row == 1 + len(content["energy"]["load_curve"])
    daily = wb["Daily"]
    assert isinstance(daily["A2"].value, datetime) and daily["A2"].number_format == "yyyy-mm-dd"

    energy = wb["Energy"]
    row = [c.value for c in energy[2]]
    dev = content["energy"]["devices"][0]
    assert row[:3] == [dev["device_id"], dev["name"], dev["kwh"]]
    assert row[3] == pytest.approx(dev["share_pct"] / 100) and energy["D2"].number_format == "0.0%"
    assert energy["G2"].number_format == "#,##0.00 [$EUR]"
    assert energy["A2"].hyperlink is not None and energy["A2"].hyperlink.location == "'Device eaf-1'!A1"

    longest = wb["Longest alerts"]
    assert longest["G2"].value == content["alerts"]["longest"][0]["duration_seconds"]

    for name in CHART_SHEETS:
        assert len(wb[name]._charts) == 1, name
    assert type(wb["Load curve"]._charts[0]).__name__ == "LineChart"
    assert type(wb["Energy"]._charts[0]).__name__ == "BarChart"
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.column_dimensions["A"].width >= 8, ws.title
    for name in SECTION_SHEETS:
        assert wb[name].auto_filter.ref and wb[name].auto_filter.ref.startswith("A1:"), name
    assert energy.column_dimensions["B"].width >= len("Electric arc furnace 1")

    lab = wb["Device lab-1"]
    values = [c.value for row in lab.iter_rows() for c in row]
    assert "temperature" in values and "Open alerts" in values
    assert render_excel(copy.deepcopy(content)) == xlsx_bytes  # deterministic, zip dates included


@pytest.mark.skipif(
    shutil.which("soffice") is None and shutil.which("libreoffice") is None,
    reason="LibreOffice is not installed here (CI installs libreoffice-calc-nogui)",
)
def test_excel_opens_in_libreoffice(xlsx_bytes: bytes, tmp_path: Path) -> None:
    src = tmp_path / "report.xlsx"
    src.write_bytes(xlsx_bytes)
    office = shutil.which("soffice") or shutil.which("libreoffice")
    assert office is not None
    run = subprocess.run(
        [office, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path / 'profile'}",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = tmp_path / "report.pdf"
    assert out.exists(), run.stdout + run.stderr
    text = "\n".join(pdf_pages(out.read_bytes()))
    assert "Demo Steel Mill" in text
    assert "1,197,430.9" in text  # the total kWh with its number format applied
    assert "EUR" in text and "%" in text


# --- edge cases --------------------------------------------------------------------------------------------


def test_empty_sections_render_with_explanations() -> None:
    c = sample_content()
    e = c["energy"]
    for key in ("devices", "by_day", "by_weekday", "by_shift", "by_tariff_band", "load_curve"):
        e[key] = []
    for key in ("total_kwh", "previous_total_kwh", "change_pct", "cost", "previous_cost", "co2_kg", "peak_kw",
                "peak_at", "peak_device", "average_kw", "load_factor"):  # fmt: skip
        e[key] = None
    c["properties"]["items"] = []
    c["alerts"] = {"total": 0, "by_severity": {"critical": 0, "warning": 0, "info": 0}, "by_rule": [], "by_device": [],
                   "mtta_seconds": None, "mttr_seconds": None, "longest": [], "open": [], "over_time": []}  # fmt: skip
    c["analytics"]["runs"] = []
    c["summary"] = {"highlights": [], "kpis": [dict(k, value=None, previous=None, change_pct=None)
                                               for k in c["summary"]["kpis"]]}  # fmt: skip
    c["report"]["previous_period"] = None
    text = "\n".join(pdf_pages(render_pdf(c)))
    for words in ("No devices in this report.", "No demand data in the period.", "No alert is open.",
                  "No properties were chosen", "No analytics runs finished"):  # fmt: skip
        assert words in text, words
    wb = openpyxl.load_workbook(io.BytesIO(render_excel(c)))
    assert wb.sheetnames == ["Summary", *SECTION_SHEETS]  # no devices, no device sheets
    assert wb["Energy"].max_row == 1 or wb["Energy"]["A2"].value is None
    assert json.loads(render_json(c)) == c


def test_sections_not_in_the_report_are_left_out() -> None:
    c = sample_content()
    c["report"]["sections"] = ["alerts"]
    c["energy"] = c["properties"] = c["analytics"] = None
    c["report"]["devices"] = ["comp-2", "lab-1"]
    pages = pdf_pages(render_pdf(c))
    full = "\n".join(pages)
    assert "2 selected device(s): comp-2, lab-1" in pages[0]
    assert "Load curve" not in full and "Analytics" not in full and "Alerts over time" in full
    wb = openpyxl.load_workbook(io.BytesIO(render_excel(c)))
    assert wb.sheetnames == ["Summary", "Alerts", "Alerts by rule", "Alerts by device", "Longest alerts",
                             "Open alerts"]  # fmt: skip


def test_long_and_awkward_device_names() -> None:
    c = sample_content()
    devices = c["energy"]["devices"]
    long_id = "line-7/press:" + "x" * 60
    devices[0]["device_id"] = long_id
    devices[0]["name"] = "Hydraulic press " + "Ü" * 150 + " with a very long name " * 8
    devices[1]["device_id"] = long_id + "-second"  # same first 31 characters as the first
    devices[2]["name"] = "<b>Kiln & dryer</b> \u2018north\u2019 Ωmega"
    c["energy"]["peak_device"] = long_id
    pdf = render_pdf(c)
    pages = pdf_pages(pdf)
    full = " ".join("\n".join(pages).split())
    assert "<b>Kiln & dryer</b> \u2018north\u2019 Ωmega" in full  # escaped, not markup; any script prints
    assert "Hydraulic press ÜÜÜ" in full
    assert len(pages) <= 14
    wb = openpyxl.load_workbook(io.BytesIO(render_excel(c)))
    device_sheets = [s for s in wb.sheetnames if s.startswith("Device ")]
    ids = {d["device_id"] for d in devices} | {i["device_id"] for i in c["properties"]["items"]}
    assert len(device_sheets) == len({s.lower() for s in device_sheets}) == len(ids) == 15
    assert all(len(s) <= 31 and not set(s) & set("[]:*?/\\") for s in device_sheets)
    assert wb["Energy"].column_dimensions["B"].width == 60  # capped


def test_control_characters_in_stored_names_are_drawn_as_spaces() -> None:
    """Names stored before the API refused control characters: the PDF and Excel draw them as
    spaces (no missing-glyph warning, no openpyxl IllegalCharacterError); JSON keeps them escaped."""
    c = sample_content()
    c["energy"]["devices"][0]["name"] = "Press\x97 line\x07 1"
    c["report"]["factory"]["name"] = "Plant\x1bNorth"
    with pytest.warns(UserWarning, match="Glyph 151"):
        render_pdf(c)  # what the raw name did before
    with pytest.raises(openpyxl.utils.exceptions.IllegalCharacterError):
        render_excel(c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdf = render(c, "pdf").data
        xlsx = render(c, "xlsx").data
    assert "Press line 1" in " ".join(" ".join(pdf_pages(pdf)).split())
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    cells = {str(cell.value) for sheet in book.worksheets for row in sheet.iter_rows() for cell in row}
    assert "Press  line  1" in cells  # each control character became one space
    assert not any(ch in "".join(cells) for ch in "\x97\x07\x1b")
    assert json.loads(render(c, "json").data)["energy"]["devices"][0]["name"] == "Press\x97 line\x07 1"


def test_thousand_devices() -> None:
    """A plant of 1,000 devices: charts summarise, tables paginate (timing is bench/reports.py's job)."""
    c = many_devices(1000)
    bars = top_devices(c["energy"]["devices"])
    assert len(bars) == TOP_DEVICES + 1 and bars[-1][0] == "Others (985 devices)"
    assert sum(v for _, v in bars) == pytest.approx(sum(d["kwh"] for d in c["energy"]["devices"]))

    pdf = render_pdf(c)
    pages = pdf_pages_fast(pdf)
    full = "\n".join(pages)
    assert "Consumption per device (top 15 of 1000 and the others)" in full
    table_pages = [p for p in pages if "Sub-meter" in p]
    assert len(table_pages) >= 15  # the device table runs over many pages...
    assert all("Resets/" in p for p in table_pages)  # ...repeating its header row on each
    assert all(f"Page {i} of {len(pages)}" in p for i, p in enumerate(pages[1:], start=2))

    xlsx = render_excel(c)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    assert len(wb.sheetnames) == 1 + len(SECTION_SHEETS) + 1000
    wb.close()
