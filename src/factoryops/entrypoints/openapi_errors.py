"""Makes the OpenAPI document describe the errors the API really sends.

FastAPI documents every 422 as its own ``HTTPValidationError`` (``{"detail": [...]}``) and no other
error at all, while every error this API sends (422 included) is
``{"error": {"code", "message", "details"}}`` (core/errors.py and the handlers in entrypoints/api.py).
This rewrites the generated document: each 422 points at ``ErrorResponse``, and each operation under
the API prefix gets a ``default`` response with the same schema, so that generated clients type their
errors and a schema check of any 4xx/5xx answer means something.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "title": "ErrorDetail",
        "type": "object",
        "description": "One problem with the input: where (a dotted path such as body.rules.0.threshold) and what.",
        "properties": {
            "field": {"type": "string", "title": "Field"},
            "message": {"type": "string", "title": "Message"},
        },
        "required": ["field", "message"],
    },
    "ErrorBody": {
        "title": "ErrorBody",
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "title": "Code",
                "description": "Stable snake_case code, e.g. validation_error, malformed_json, not_found, "
                "forbidden, rate_limited, database_unavailable.",
            },
            "message": {"type": "string", "title": "Message", "description": "A sentence a person can act on."},
            "details": {
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
                    {"type": "null"},
                ],
                "title": "Details",
            },
        },
        "required": ["code", "message"],
    },
    "ErrorResponse": {
        "title": "ErrorResponse",
        "type": "object",
        "description": "The body of every error answer.",
        "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
        "required": ["error"],
    },
}

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def document_errors(schema: dict[str, Any], api_prefix: str) -> dict[str, Any]:
    """Rewrites `schema` (FastAPI's generated document) in place and returns it."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_SCHEMAS)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _error_response(
                    "Invalid input (code validation_error; details name each field). A body that is not JSON "
                    "is a 400 with code malformed_json."
                )
            if path.startswith(api_prefix + "/"):
                responses.setdefault("default", _error_response("Any other error; every 4xx and 5xx has this body."))
    for name in _FASTAPI_ERRORS:  # drop FastAPI's error schemas once nothing refers to them
        others = {key: value for key, value in schema.items() if key != "components"}
        others["schemas"] = {key: value for key, value in schemas.items() if key != name}
        if f"'#/components/schemas/{name}'" not in repr(others):
            schemas.pop(name, None)
    return schema
