"""Path parameters shared by the pages: a row id in a URL is a positive 64-bit integer, so
an absurd one is a clear 422, never a database overflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ROW_ID = 2**63 - 1  # the largest BIGINT / SQLite INTEGER

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
