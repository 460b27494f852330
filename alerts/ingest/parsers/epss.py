"""FIRST EPSS scores: the daily CSV (plain or gzip) and the EPSS API JSON.

The daily file has about 300 000 rows, so rows are read with the csv module over the
decoded lines and bad rows only cost a warning. Gzip input is decompressed with a hard cap
so that a small "gzip bomb" cannot exhaust memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from datetime import date
from typing import Any

from alerts.ingest.normalize import normalize_cve, parse_date
from alerts.ingest.records import (
    EpssScore,
    HostileDocument,
    MalformedDocument,
    ParseResult,
    UnsupportedDocument,
)

GZIP_MAGIC = b"\x1f\x8b"
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # the real daily file is about 12 MB unpacked
MAX_ROW_WARNINGS = 20  # past this, bad rows are counted, not listed one by one
_FAST_CVE_RE = re.compile(r"CVE-\d{4}-\d{4,7}")


# ----------------------------------------------------------------------------- CSV


def parse_csv(data: bytes, base_url: str | None = None) -> ParseResult:
    """EPSS CSV: optional "#model_version:...,score_date:..." line, then cve,epss,percentile."""
    text = _decode(gunzip_capped(data) if data.startswith(GZIP_MAGIC) else data)
    lines = text.splitlines()
    meta, header_at = _read_preamble(lines)
    scored_on = _score_date(meta.get("score_date"))
    result = ParseResult(format="epss-csv", title=_title(meta, scored_on))
    columns = _header_columns(lines[header_at])
    rows = csv.reader(lines[header_at + 1 :])
    bad = 0
    for line_no, row in enumerate(rows, start=header_at + 2):
        score = _row_score(row, columns, scored_on)
        if score is not None:
            result.epss.append(score)
        elif row and any(cell.strip() for cell in row):
            bad += 1
            if bad <= MAX_ROW_WARNINGS:
                result.warnings.append(f"line {line_no}: unusable row {','.join(row)[:80]!r}")
    if bad > MAX_ROW_WARNINGS:
        result.warnings.append(f"{bad - MAX_ROW_WARNINGS} more unusable rows not listed")
    return result


def gunzip_capped(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress gzip data, refusing more than `limit` bytes of output."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out = handle.read(limit + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise MalformedDocument(f"broken gzip data: {error}") from None
    if len(out) > limit:
        raise HostileDocument(
            f"gzip data expands beyond {limit // (1024 * 1024)} MB; refused as a likely bomb"
        )
    return out


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedDocument(f"EPSS CSV is not UTF-8 text: {error}") from None


def _read_preamble(lines: list[str]) -> tuple[dict[str, str], int]:
    """The "#key:value,key:value" comment lines and the index of the header line."""
    meta: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            meta.update(_comment_fields(stripped.lstrip("#")))
        elif stripped:
            return meta, index
    raise MalformedDocument("EPSS CSV has no header line (expected cve,epss,percentile)")


def _comment_fields(comment: str) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in comment.split(",") if ":" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def _header_columns(line: str) -> dict[str, int]:
    names = [name.strip().lower() for name in next(csv.reader([line]))]
    if "cve" not in names or "epss" not in names:
        raise MalformedDocument(f"EPSS CSV header is {line[:80]!r}, expected cve,epss,percentile")
    return {name: index for index, name in enumerate(names)}


def _score_date(value: str | None) -> date | None:
    moment = parse_date(value)
    return moment.date() if moment else None


def _title(meta: dict[str, str], scored_on: date | None) -> str:
    parts = ["EPSS", meta.get("model_version"), scored_on.isoformat() if scored_on else None]
    return " ".join(part for part in parts if part)


def _row_score(row: list[str], columns: dict[str, int], scored_on: date | None) -> EpssScore | None:
    try:
        cve = row[columns["cve"]].strip()
        epss = float(row[columns["epss"]])
        percentile = float(row[columns["percentile"]]) if "percentile" in columns else None
    except (IndexError, ValueError):
        return None
    return _score(cve, epss, percentile, scored_on)


def _score(
    cve: str, epss: float, percentile: float | None, scored_on: date | None
) -> EpssScore | None:
    """An EpssScore, or None for an unknown id or a value outside [0, 1]."""
    if not _FAST_CVE_RE.fullmatch(cve):  # the fast path covers every real row
        cve = normalize_cve(cve) or ""
    if not cve or not 0.0 <= epss <= 1.0:
        return None
    if percentile is not None and not 0.0 <= percentile <= 1.0:
        return None
    return EpssScore(cve_id=cve, epss=epss, percentile=percentile, scored_on=scored_on)


# ----------------------------------------------------------------------------- API


def parse_api(data: bytes, base_url: str | None = None) -> ParseResult:
    """https://api.first.org/data/v1/epss responses; numbers arrive as quoted strings."""
    doc = _load_api(data)
    result = ParseResult(format="epss-api", title="EPSS API")
    for index, item in enumerate(doc["data"]):
        score = _api_score(item)
        if score is None:
            result.warnings.append(f"data[{index}] is not a usable EPSS score: {item!r:.80}")
        else:
            result.epss.append(score)
    return result


def _load_api(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedDocument(f"invalid JSON: {error}") from None
    if not isinstance(doc, dict) or ("status" not in doc and "data" not in doc):
        raise UnsupportedDocument("not an EPSS API response (no 'status' or 'data')")
    if str(doc.get("status", "")).upper() != "OK":
        detail = doc.get("message") or doc.get("status-code") or ""
        raise MalformedDocument(f"EPSS API status is {doc.get('status')!r} {detail}".strip())
    if not isinstance(doc.get("data"), list):
        raise MalformedDocument("EPSS API response has no 'data' list")
    return doc


def _api_score(item: Any) -> EpssScore | None:
    if not isinstance(item, dict):
        return None
    try:
        epss = float(item["epss"])
        percentile = float(item["percentile"]) if item.get("percentile") is not None else None
    except (KeyError, TypeError, ValueError):
        return None
    return _score(str(item.get("cve", "")).strip(), epss, percentile, _score_date(item.get("date")))
