"""Reading JSON documents defensively: typed errors, and tolerant field access for the
schema violations real publishers make (a list where an object belongs, and so on)."""

from __future__ import annotations

import json
from typing import Any

from alerts.ingest.records import MalformedDocument, UnsupportedDocument


def load_json(data: bytes, what: str) -> Any:
    """The parsed JSON document, or MalformedDocument saying where it breaks."""
    if not data.strip():
        raise MalformedDocument(f"empty {what} document")
    try:
        return json.loads(data)
    except UnicodeDecodeError as error:
        raise MalformedDocument(f"{what} document is not UTF-8 text: {error}") from None
    except json.JSONDecodeError as error:
        raise MalformedDocument(
            f"invalid JSON in {what} document at line {error.lineno} column {error.colno}: "
            f"{error.msg}"
        ) from None
    except RecursionError:
        raise MalformedDocument(f"{what} document nests too deeply") from None


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Like load_json, for documents that must be a JSON object."""
    value = load_json(data, what)
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise UnsupportedDocument(f"a {what} document must be a JSON object, not {kind}")
    return value


def as_list(value: Any) -> list:
    """A JSON array field, or [] when it is missing or of another type."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    """A JSON object field, or {} when it is missing or of another type."""
    return value if isinstance(value, dict) else {}


def as_text(value: Any) -> str:
    """A scalar as stripped text; objects and lists (schema violations) as ""."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()
