"""Report renderers: one content dict (see ``factoryops/reports/schema.json``) to PDF, Excel or JSON bytes.

Pure functions of the content: no files, no network, no clock (the PDF's dates come from
``report.generated_at``), so the same content always gives the same bytes.
"""

from factoryops.reports.render.excel import render_excel
from factoryops.reports.render.json_out import SCHEMA, render_json, validate
from factoryops.reports.render.pdf import render_pdf

__all__ = ["SCHEMA", "render_excel", "render_json", "render_pdf", "validate"]
