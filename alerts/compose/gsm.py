"""SMS encoding: GSM 03.38 (GSM-7) or UCS-2, segment counting, and a faithful GSM-7 downgrade.

A text stays GSM-7 only when every character is in the GSM 03.38 basic table or its extension
table; one other character turns the whole message into UCS-2 (UTF-16 on the wire), which
more than halves what a segment holds:

    GSM-7  160 units in one segment, 153 per segment when split (the rest is the UDH header);
           extension characters (€ [ ] { } ^ ~ | \\ and form feed) take 2 units (ESC + char).
    UCS-2   70 units in one segment,  67 per segment when split; characters outside the
           Basic Multilingual Plane (most emoji) take 2 units (a surrogate pair).

Operators never split an escape sequence or a surrogate pair across two segments, so the
count packs whole characters rather than dividing the total.

`to_gsm7` replaces the characters that would force UCS-2 where GSM-7 has a faithful equivalent
(see PUNCTUATION and LETTERS below). What it cannot replace (emoji, Greek lowercase, Cyrillic…)
stays, and `sms_segments` names it in `unicode_characters` so staff can see why.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)  # the 128 positions of GSM 03.38 less ESC (0x1B), which is no character of its own
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = GSM7_BASIC | GSM7_EXTENSION

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PART = {"GSM-7": 153, "UCS-2": 67}

# Punctuation, spaces and symbols with an equivalent that reads the same.
PUNCTUATION = {
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark / typographic apostrophe
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\u2032": "'",  # ′ prime
    "\u00b4": "'",  # ´ acute accent used as an apostrophe
    "`": "'",  # grave accent / backtick (not in GSM-7)
    "\u2039": "'",  # ‹ single guillemet
    "\u203a": "'",  # › single guillemet
    "\u201c": '"',  # “ left double quotation mark
    "\u201d": '"',  # ” right double quotation mark
    "\u201e": '"',  # „ double low-9 quotation mark (Dutch, German)
    "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # « guillemet (French); its inner space is dropped first, see GUILLEMETS
    "\u00bb": '"',  # » guillemet
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u2022": "-",  # • bullet
    "\u2023": "-",  # ‣ triangular bullet
    "\u2043": "-",  # ⁃ hyphen bullet
    "\u2219": "-",  # ∙ bullet operator
    "\u25e6": "-",  # ◦ white bullet
    "\u00b7": "-",  # · middle dot (as a separator)
    "\u2026": "...",  # … ellipsis
    "\u2044": "/",  # ⁄ fraction slash
    "\u00d7": "x",  # × multiplication sign
    "\u2192": "->",  # → arrow
    "\u2264": "<=",  # ≤
    "\u2265": ">=",  # ≥
    "\u2122": "TM",  # ™
    "\u00a9": "(c)",  # ©
    "\u00ae": "(R)",  # ®
    "\u0152": "OE",  # Œ ligature (French: œuvre, cœur)
    "\u0153": "oe",  # œ
    "\u0132": "IJ",  # Ĳ ligature (Dutch)
    "\u0133": "ij",  # ĳ
    "\ufb01": "fi",  # ﬁ ligature (copied from PDFs)
    "\ufb02": "fl",  # ﬂ
    "\t": " ",
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space (French before : ; ! ?)
    "\u2007": " ",  # figure space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    **{chr(code): " " for code in range(0x2000, 0x2007)},  # en quad … six-per-em space
    "\u2008": " ",  # punctuation space
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark / zero-width no-break space
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
}

# Latin letters whose accent GSM-7 lacks lose the accent, the usual practice for French,
# Dutch and German SMS: ê→e, â→a, î→i, ô→o, û→u, ë→e, ï→i, ÿ→y, ç→c, á→a, í→i, ó→o, ú→u,
# È→E, À→A … Letters GSM-7 has keep their accent (é è ù ì ò à ä ö ü ñ å ø æ É Ä Ö Ü Ñ Å Ç ß).
# ç becomes c rather than GSM-7's capital Ç: "recu" reads better than "reÇu".
ACCENTED = (
    "ÀÁÂÃÈÊËÌÍÎÏÒÓÔÕÙÚÛÝáâãçêëíîïóôõúûýÿ"
    "ĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤť"
    "ŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž"
)
LETTERS = {letter: unicodedata.normalize("NFD", letter)[0] for letter in ACCENTED}
REPLACEMENTS = {**PUNCTUATION, **LETTERS}
GUILLEMETS = re.compile(r"«[ \u00a0\u202f]*|[ \u00a0\u202f]*»")


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" | "UCS-2"
    characters: int  # in encoding units: GSM-7 extension characters and surrogate pairs count 2
    segments: int  # 0 for an empty text
    unicode_characters: tuple[str, ...] = ()  # the characters forcing UCS-2, first use first


def sms_segments(text: str) -> SegmentCount:
    """How the text travels, counted as it is (run `to_gsm7` first to avoid UCS-2)."""
    unicode_characters = tuple(dict.fromkeys(c for c in text if c not in GSM7))
    encoding = "UCS-2" if unicode_characters else "GSM-7"
    widths = [_width(c, encoding) for c in text]
    return SegmentCount(encoding, sum(widths), _pack(widths, encoding), unicode_characters)


def to_gsm7(text: str) -> str:
    """The text with UCS-2-forcing characters replaced by their GSM-7 equivalents, where one
    exists; everything else (GSM-7 characters, and those without an equivalent) unchanged."""
    text = GUILLEMETS.sub('"', text)
    return "".join(c if c in GSM7 else REPLACEMENTS.get(c, c) for c in text)


def _width(character: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if character in GSM7_EXTENSION else 1
    return 2 if ord(character) > 0xFFFF else 1


def _pack(widths: list[int], encoding: str) -> int:
    total = sum(widths)
    if total <= SINGLE[encoding]:
        return 1 if total else 0
    segments, room = 1, PART[encoding]
    for width in widths:
        if width > room:  # an escape sequence or surrogate pair is never split
            segments, room = segments + 1, PART[encoding]
        room -= width
    return segments
