"""One dispatch point for every document format.

Each format is one module with `parse(data: bytes, base_url: str | None) -> ParseResult`.
Adding a format is one module and one line in FORMATS.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from alerts.ingest.records import MalformedDocument, ParseError, ParseResult

log = logging.getLogger(__name__)

# format name -> "module:function" (imported lazily so one broken module never stops others)
FORMATS: dict[str, str] = {
    "rss": "alerts.ingest.parsers.rss:parse",  # RSS 0.9x/1.0 (RDF)/2.0 and Atom
    "cisa-kev": "alerts.ingest.parsers.kev:parse_cisa",
    "eu-kev": "alerts.ingest.parsers.kev:parse_eu",
    "csaf": "alerts.ingest.parsers.csaf:parse_document",
    "csaf-rolie": "alerts.ingest.parsers.csaf_distribution:parse_rolie_feed",
    "csaf-index": "alerts.ingest.parsers.csaf_distribution:parse_index_txt",
    "csaf-changes": "alerts.ingest.parsers.csaf_distribution:parse_changes_csv",
    "csaf-provider": "alerts.ingest.parsers.csaf_distribution:parse_provider_metadata",
    "cve": "alerts.ingest.parsers.cve:parse_record",
    "cvelist-delta": "alerts.ingest.parsers.cve:parse_delta",
    "nvd": "alerts.ingest.parsers.nvd:parse",
    "euvd": "alerts.ingest.parsers.euvd:parse",
    "cvrf": "alerts.ingest.parsers.cvrf:parse",
    "msrc-updates": "alerts.ingest.parsers.vendor_json:parse_msrc_updates",
    "paloalto-list": "alerts.ingest.parsers.vendor_json:parse_paloalto_list",
    "cisco-openvuln": "alerts.ingest.parsers.vendor_json:parse_cisco_openvuln",
    "cnw-markdown": "alerts.ingest.parsers.cnw:parse",
    "epss-csv": "alerts.ingest.parsers.epss:parse_csv",
    "epss-api": "alerts.ingest.parsers.epss:parse_api",
}


def parser_for(format: str) -> Callable[[bytes, str | None], ParseResult]:
    try:
        target = FORMATS[format]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ParseError(f"unknown format {format!r}; known formats: {known}") from None
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def parse(data: bytes, format: str, base_url: str | None = None) -> ParseResult:
    """Parse with the named format. Always returns a ParseResult or raises ParseError."""
    parser = parser_for(format)
    try:
        result = parser(data, base_url)
    except ParseError as error:
        error.format = error.format or format
        raise
    except RecursionError:
        raise MalformedDocument("document nests too deeply", format=format) from None
    except MemoryError:
        raise
    except Exception as error:
        # A parser met a shape (or a number, or a date) it did not expect: report it against
        # the feed as a typed error and keep going; never let it stop the poller.
        log.debug("parser %s failed", format, exc_info=True)
        raise MalformedDocument(
            f"unexpected document content ({type(error).__name__}: {str(error)[:200]})",
            format=format,
        ) from error
    result.format = format
    return result
