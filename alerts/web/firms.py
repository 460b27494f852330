"""The public directory of vetted security firms, in the reader's language.

Only firms `directory.shown` allows (vetted, vetting not yet expired) are listed, by name;
the filters are region, language, speciality and KMO-portefeuille, read leniently (an
unknown value is ignored, never an error). Firm text is plain text, escaped by the
template; the website is the only link and is https (checked when the firm was stored)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from alerts.compose.views import firm_view
from alerts.referrals import directory
from alerts.referrals.labels import speciality_label
from alerts.referrals.models import SPECIALITIES, Firm
from alerts.staff.web import utcnow
from alerts.templating import LANGUAGES, reader_language, render
from subscribers import options

router = APIRouter()
YES = ("1", "on", "true", "yes")


@dataclass(frozen=True)
class FirmQuery:
    region: str = ""
    language: str = ""
    speciality: str = ""
    kmo: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FirmQuery:
        region, language = params.get("region", ""), params.get("speaks", "")
        speciality = params.get("speciality", "")
        return cls(
            region=region if region in options.codes("regions") else "",
            language=language if language in LANGUAGES else "",
            speciality=speciality if speciality in SPECIALITIES else "",
            kmo=params.get("kmo", "") in YES,
        )

    @property
    def active(self) -> bool:
        return bool(self.region or self.language or self.speciality or self.kmo)

    def matches(self, firm: Firm) -> bool:
        return (
            (not self.region or self.region in (firm.regions or ()))
            and (not self.language or self.language in (firm.languages or ()))
            and (not self.speciality or self.speciality in (firm.specialities or ()))
            and (not self.kmo or bool(firm.kmo_portefeuille))
        )

    def link(self, language: str) -> str:
        params = {
            "region": self.region,
            "speaks": self.language,
            "speciality": self.speciality,
            "kmo": "1" if self.kmo else "",
            "lang": language,
        }
        return "/firms?" + urlencode({name: value for name, value in params.items() if value})


def listing(firm: Firm, language: str) -> dict[str, object]:
    """What the page shows of one firm, labels in the reader's language."""
    return {
        "view": firm_view(firm),
        "regions": [options.label("regions", code, language) for code in firm.regions or ()],
        "languages": [options.label("languages", code, language) for code in firm.languages or ()],
        "specialities": [speciality_label(code, language) for code in firm.specialities or ()],
        "certifications": list(firm.certifications or ()),
        "kmo": bool(firm.kmo_portefeuille),
    }


@router.get("/firms", response_class=HTMLResponse)
def firms_directory(request: Request) -> Response:
    language = reader_language(request)
    query = FirmQuery.parse(request.query_params)
    with request.app.state.database.session() as session:
        firms = [firm for firm in directory.shown(session, utcnow()) if query.matches(firm)]
        firms.sort(key=lambda firm: (firm.name.casefold(), firm.id))
        rows = [listing(firm, language) for firm in firms]
    body = render(
        "web/firms.html",
        language,
        query=query,
        firms=rows,
        regions=[(c.code, c.label(language)) for c in options.choices("regions")],
        spoken=[(code, options.label("languages", code, language)) for code in LANGUAGES],
        specialities=[(code, speciality_label(code, language)) for code in SPECIALITIES],
        language_links={code: query.link(code) for code in LANGUAGES},
    )
    return HTMLResponse(body)
