"""A first draft of an alert in nl, fr, en and de, from the structured facts of the
advisories it is made from: the products in plain words, the CVEs, whether the flaw is
exploited, the vendor's advice and links. Staff then edit it; nothing here is sent as is.

Pure: advisories come in as `Source` values, the catalogue gives product names."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.relevance.catalogue import Catalogue

LANGUAGES = ("nl", "fr", "en", "de")
MAX_LINKS = 6


@dataclass(frozen=True)
class Source:
    """What drafting needs of one advisory."""

    title: str
    source: str
    url: str | None
    cves: tuple[str, ...] = ()
    families: tuple[str, ...] = ()  # catalogue ids
    products: tuple[str, ...] = ()  # as the publisher named them
    known_exploited: bool = False
    ransomware: bool = False
    required_action: str | None = None  # CISA KEV's "required action"
    links: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Draft:
    tier: str
    texts: dict[str, dict]  # language -> {title, what, affected, actions, urgency}
    cves: list[str]
    known_exploited: bool
    links: list[list[str]]  # [label, url]
    families: list[str]


# Our own wording, one entry per language. {products} and {cves} are filled in.
WORDING = {
    "en": {
        "title_exploited": "Attackers exploit a flaw in {products}",
        "title": "Security flaw in {products}",
        "what_exploited": (
            "A security flaw in {products} is being exploited by attackers{cves}. "
            "Systems that are not updated can be taken over."
        ),
        "what": ("A security flaw was found in {products}{cves}. The maker has published a fix."),
        "ransomware": " It is used in ransomware attacks.",
        "affected": "Businesses that use {products}.",
        "action_update": "Install the update from the maker today.",
        "action_check": "Check that nobody unknown has logged in recently.",
        "action_help": "If you are not sure how to do this, ask your IT supplier.",
        "urgency_exploited": "Act today",
        "urgency": "Act this week",
        "cves": " ({cves})",
        "and": "and",
        "vendor_advice": "Advice from {source}",
    },
    "nl": {
        "title_exploited": "Aanvallers misbruiken een lek in {products}",
        "title": "Beveiligingslek in {products}",
        "what_exploited": (
            "Aanvallers misbruiken een beveiligingslek in {products}{cves}. "
            "Systemen die niet bijgewerkt zijn, kunnen overgenomen worden."
        ),
        "what": (
            "Er is een beveiligingslek gevonden in {products}{cves}. "
            "De fabrikant heeft een oplossing gepubliceerd."
        ),
        "ransomware": " Het lek wordt gebruikt bij ransomware-aanvallen.",
        "affected": "Ondernemingen die {products} gebruiken.",
        "action_update": "Installeer vandaag nog de update van de fabrikant.",
        "action_check": "Controleer of er onlangs geen onbekenden aangemeld zijn.",
        "action_help": "Twijfelt u hoe u dit doet? Vraag het aan uw IT-leverancier.",
        "urgency_exploited": "Vandaag handelen",
        "urgency": "Deze week handelen",
        "cves": " ({cves})",
        "and": "en",
        "vendor_advice": "Advies van {source}",
    },
    "fr": {
        "title_exploited": "Des attaquants exploitent une faille dans {products}",
        "title": "Faille de sécurité dans {products}",
        "what_exploited": (
            "Des attaquants exploitent une faille de sécurité dans {products}{cves}. "
            "Les systèmes non mis à jour peuvent être pris en main."
        ),
        "what": (
            "Une faille de sécurité a été découverte dans {products}{cves}. "
            "Le fabricant a publié un correctif."
        ),
        "ransomware": " Elle est utilisée dans des attaques par rançongiciel.",
        "affected": "Les entreprises qui utilisent {products}.",
        "action_update": "Installez aujourd'hui la mise à jour du fabricant.",
        "action_check": "Vérifiez que personne d'inconnu ne s'est connecté récemment.",
        "action_help": "En cas de doute, demandez à votre fournisseur informatique.",
        "urgency_exploited": "Agir aujourd'hui",
        "urgency": "Agir cette semaine",
        "cves": " ({cves})",
        "and": "et",
        "vendor_advice": "Avis de {source}",
    },
    "de": {
        "title_exploited": "Angreifer nutzen eine Lücke in {products} aus",
        "title": "Sicherheitslücke in {products}",
        "what_exploited": (
            "Angreifer nutzen eine Sicherheitslücke in {products} aus{cves}. "
            "Nicht aktualisierte Systeme können übernommen werden."
        ),
        "what": (
            "In {products} wurde eine Sicherheitslücke gefunden{cves}. "
            "Der Hersteller hat eine Korrektur veröffentlicht."
        ),
        "ransomware": " Sie wird bei Ransomware-Angriffen genutzt.",
        "affected": "Unternehmen, die {products} nutzen.",
        "action_update": "Installieren Sie noch heute das Update des Herstellers.",
        "action_check": "Prüfen Sie, ob sich in letzter Zeit Unbekannte angemeldet haben.",
        "action_help": "Wenn Sie unsicher sind, fragen Sie Ihren IT-Dienstleister.",
        "urgency_exploited": "Heute handeln",
        "urgency": "Diese Woche handeln",
        "cves": " ({cves})",
        "and": "und",
        "vendor_advice": "Hinweis von {source}",
    },
}


def draft(sources: list[Source], catalogue: Catalogue) -> Draft:
    """The first draft for one or several advisories about the same matter."""
    if not sources:
        raise ValueError("an alert is drafted from at least one advisory")
    families = _unique(family for source in sources for family in source.families)
    names = _product_names(sources, families, catalogue)
    cves = _unique(cve for source in sources for cve in source.cves)
    exploited = any(source.known_exploited for source in sources)
    ransomware = any(source.ransomware for source in sources)
    advice = next((s.required_action for s in sources if s.required_action), None)
    texts = {
        language: _text(WORDING[language], names, cves, exploited, ransomware, advice, language)
        for language in LANGUAGES
    }
    return Draft(
        tier="urgent" if exploited else "newsletter",
        texts=texts,
        cves=cves,
        known_exploited=exploited,
        links=_links(sources),
        families=families,
    )


def _text(words, names, cves, exploited, ransomware, advice, language) -> dict:
    products = _join(names, words["and"])
    cve_part = words["cves"].format(cves=", ".join(cves[:3])) if cves else ""
    what = words["what_exploited" if exploited else "what"].format(products=products, cves=cve_part)
    if ransomware:
        what += words["ransomware"]
    actions = [words["action_update"]]
    if advice and language == "en":
        actions.append(advice)  # the publisher's own words exist in English only
    if exploited:
        actions.append(words["action_check"])
    actions.append(words["action_help"])
    return {
        "title": words["title_exploited" if exploited else "title"].format(products=products),
        "what": what,
        "affected": words["affected"].format(products=products),
        "actions": actions,
        "urgency": words["urgency_exploited" if exploited else "urgency"],
    }


def _product_names(sources: list[Source], families: list[str], catalogue: Catalogue):
    """Plain product names: the catalogue's, else what the publisher called them."""
    names = [family.name for family in map(catalogue.get, families) if family is not None]
    if not names:
        names = _unique(product for source in sources for product in source.products)[:3]
    return names or [sources[0].title[:80]]


def _links(sources: list[Source]) -> list[list[str]]:
    links, seen = [], set()
    for source in sources:
        for url in (source.url, *source.links):
            if url and url.startswith("https://") and url not in seen:
                seen.add(url)
                links.append([source.source, url])
    return links[:MAX_LINKS]


def _join(names: list[str], conjunction: str) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _unique(items) -> list:
    return list(dict.fromkeys(items))
