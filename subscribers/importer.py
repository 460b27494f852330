"""Bulk onboarding from a CSV file (a chamber of commerce list, say). Pure reading and
validation here; the CLI stores valid rows through the normal sign-up path, so every
imported person gets a confirmation email and is not subscribed until they confirm.

Columns (header names; only organisation and email are required, the rest may come from
defaults): organisation, email, enterprise_number, phone, language, region, sector,
size_band, families (separated by ";" or "|"), urgent_email, urgent_sms, newsletter."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from subscribers.validation import Profile, ProfileErrors, parse_profile

MAX_ROWS = 200_000
MAX_FIELD = 2_000


@dataclass(frozen=True)
class Row:
    number: int  # line in the file, header = 1
    profile: Profile | None
    errors: tuple[str, ...] = ()


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, header, size)."""


def read_rows(
    text: str, offered_families: frozenset[str], defaults: Mapping[str, str]
) -> Iterator[Row]:
    """Each data row validated, with duplicates of an earlier row reported as errors."""
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=_dialect(text))
    _check_header(reader.fieldnames)
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader):
        number = index + 2
        if index >= MAX_ROWS:
            raise ImportFileError(f"more than {MAX_ROWS} rows; split the file")
        row = _row(number, raw, offered_families, defaults)
        if row.profile is not None:
            first = seen.setdefault(row.profile.email.lower(), number)
            if first != number:
                row = Row(number, None, (f"email: the same address as row {first}",))
        yield row


def _dialect(text: str) -> type[csv.Dialect]:
    """Comma, semicolon (what Excel writes in Belgium) or tab: the header row decides."""
    header = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header.count)

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter
    return Dialect


def _check_header(fields: list[str] | None) -> None:
    names = {name.strip().lower() for name in fields or []}
    missing = {"organisation", "email"} - names
    if missing:
        raise ImportFileError(f"the header row lacks: {', '.join(sorted(missing))}")


def _row(number: int, raw: dict, offered: frozenset[str], defaults: Mapping[str, str]) -> Row:
    data = _fields(raw, defaults)
    if "families" not in data:
        data["knows_products"] = False  # the list says nothing about their technology
    try:
        return Row(number, parse_profile(data, offered, require_consent=False))
    except ProfileErrors as error:
        problems = [
            f"{field}: {message.format(**params)}"
            for field, (message, params) in error.errors.items()
        ]
        return Row(number, None, tuple(problems))


def _fields(raw: dict, defaults: Mapping[str, str]) -> dict:
    data = {key: value for key, value in defaults.items() if value}
    for key, value in raw.items():
        if key is None or value is None:
            continue  # extra cells without a header
        name, value = key.strip().lower(), str(value).strip()[:MAX_FIELD]
        if value:
            data[name] = value
    if "families" in data:
        data["families"] = [f for f in re.split(r"[;|,]\s*", data["families"]) if f]
    data.setdefault("urgent_email", "yes")
    data.setdefault("newsletter", "weekly")
    return data


def decode(content: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, as spreadsheets write it."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text")
