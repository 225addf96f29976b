"""JSON output and the published JSON Schema: the JSON download is the content itself, checked before it leaves."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

SCHEMA: dict[str, Any] = json.loads(resources.files("factoryops.reports").joinpath("schema.json").read_text("utf-8"))
_VALIDATOR = Draft202012Validator(SCHEMA)
_MAX_ERRORS = 5
_FORMATS = {
    "date-time": "an ISO 8601 date-time with its UTC offset, like 2026-10-01T00:00:00+09:00",
    "date": "a date like 2026-10-01",
}

_JSON_TYPES = {dict: "an object", list: "a list", str: "a text", bool: "true/false", int: "a number", float: "a number"}


def _where(path: Iterator[Any] | Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> str:
    where = _where(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        got = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
        message = "expected " + " or ".join(str(t) for t in expected)
        message += ", got null" if error.instance is None else f", got {got} {_short(error.instance)}"
        if "else" in schema_path:
            message += " (this section is not listed in report.sections, so it must be null)"
        elif "then" in schema_path:
            message += " (this section is listed in report.sections, so it must be filled in)"
    elif error.validator == "pattern" and error.schema.get("format") in _FORMATS:
        message = f"{_short(error.instance)} is not {_FORMATS[error.schema['format']]}"
    elif error.validator == "anyOf" and error.context:
        # "a value or null": explain why it is not the value
        not_null = [e for e in error.context if e.schema.get("type") != "null"]
        inner = _describe(best_match(not_null) or not_null[0]) if not_null else error.message
        message = inner.split(": ", 1)[-1] + " (or null)"
    else:
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return f"{where}: {message}"


def _non_finite(value: Any, path: str = "$") -> str | None:
    """JSON has no NaN or infinity; a float('nan') passes the schema as a number, so look for it here."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for k, v in value.items():
            found = _non_finite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _non_finite(v, f"{path}[{i}]")
            if found:
                return found
    return None


def validate(content: dict[str, Any]) -> None:
    """Check ``content`` against the report schema; the ValueError names the JSON path of each problem."""
    if not isinstance(content, dict):
        raise ValueError(f"Report content is invalid at $: expected an object, got {type(content).__name__}")
    errors = sorted(_VALIDATOR.iter_errors(content), key=relevance, reverse=True)
    if errors:
        # most specific first; an anyOf (value or null) error carries the useful explanation in its context
        described: list[str] = []
        for error in errors:
            text = _describe(best_match([error]) or error)
            if text not in described:
                described.append(text)
        shown = described[:_MAX_ERRORS]
        more = f" (and {len(described) - len(shown)} more)" if len(described) > len(shown) else ""
        raise ValueError("Report content is invalid at " + "; ".join(shown) + more)
    bad = _non_finite(content)
    if bad:
        raise ValueError(f"Report content is invalid at {bad}: not a finite number (use null for an unknown value)")


def render_json(content: dict[str, Any]) -> bytes:
    """The content as UTF-8 JSON (indented, key order kept), after checking it against the schema."""
    validate(content)
    return (json.dumps(content, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")
