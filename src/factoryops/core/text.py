"""Free text that people type: names on one line, descriptions and notes on several.

A name (factory, device, location, rule, report, dataset, model, tariff band) is shown in lists,
chart labels, PDF and Excel reports, emails and WhatsApp messages; a control character in one
(a NUL, an escape, a C1 code such as U+0097 pasted from a Windows document) has no glyph,
breaks a log line or a CSV cell, and is never what the person meant. The API refuses them with a
clear 422: :data:`Line` allows no control character at all, :data:`Text` allows tab, line feed
and carriage return. Both are ordinary JSON-schema patterns, so the OpenAPI document says so and
generated clients and the fuzz run know it.

:func:`printable` is the other side: text already stored (before this rule, or from a path that
does not pass the API) is made safe to draw.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

# C0 controls, DEL and the C1 controls.
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
# The same, except tab, line feed and carriage return.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Line = Annotated[str, Field(pattern=LINE_PATTERN)]
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]

MESSAGES = {
    LINE_PATTERN: "must be one line of text without control characters (no line breaks, tabs or escape codes)",
    TEXT_PATTERN: "must be text without control characters (line breaks and tabs are allowed)",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def printable(text: str) -> str:
    """``text`` with every run of control characters (line breaks included) made one space."""
    return _CONTROL.sub(" ", text)
