"""Who gets an alert, on which channel, and how many: a pure module (no database, no network).

The rules, one subscriber at a time (they mirror alerts/relevance/match.py):

- An inactive member (unconfirmed, paused or unsubscribed) gets nothing.
- Product: a targeting without families reaches everyone; otherwise a member is concerned when
  they run one of its families, or when they said "I don't know what we run" and the targeting
  has common families (the ones most SMEs run, catalogue `sme_common`).
- Sectors, regions: empty means no restriction; otherwise the member's sector (region) must
  be one of them.
- Urgent tier: "email" if they want urgent email and the address is not suppressed; "sms" if
  they want urgent SMS and the number is not suppressed; "newsletter" if they take a newsletter,
  the address is not suppressed and they do not get urgent email (they read it in their next
  issue instead of not at all).
- Newsletter tier: "newsletter" if they take a newsletter and the address is not suppressed.

`channels_for` and `recipients` are the reference: plain code, one member at a time.
`AudienceIndex` answers the same questions for a million members in milliseconds: it keeps
no Member objects, only their ids in an array and one bitset (a Python int, bit p = the member
at position p) per family, sector, region, language and flag, so a count is a few C-speed
ANDs and a `bit_count()`.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from itertools import compress, repeat
from operator import or_

from alerts.relevance.catalogue import Catalogue

CHANNELS = ("email", "sms", "newsletter")
TIERS = ("urgent", "newsletter")
NEWSLETTERS = ("none", "daily", "weekly")
LANGUAGES = ("nl", "fr", "en", "de")
# One bit each in a member's flag byte, in this order (see _flag_byte).
FLAGS = (
    "active",
    "knows_products",
    "urgent_email",
    "urgent_sms",
    "daily",
    "weekly",
    "email_suppressed",
    "sms_suppressed",
)


@dataclass(frozen=True, slots=True)
class Member:
    """What matching needs about one subscriber."""

    id: int
    families: frozenset[str]  # product family ids from alerts/relevance/catalogue.yaml
    knows_products: bool  # False = "I don't know what we run"
    sector: str
    region: str  # Belgian province / Brussels code, e.g. "BE-VAN"
    language: str  # nl | fr | en | de
    urgent_email: bool
    urgent_sms: bool  # True only once the phone number is confirmed
    newsletter: str  # "none" | "daily" | "weekly"
    email_suppressed: bool  # hard bounce, complaint or provider unsubscribe
    sms_suppressed: bool
    active: bool  # confirmed and neither paused nor unsubscribed

    def __post_init__(self):
        if self.newsletter not in NEWSLETTERS:  # the index only knows these two cadences
            raise ValueError(f"newsletter must be one of {NEWSLETTERS}, not {self.newsletter!r}")


@dataclass(frozen=True)
class Targeting:
    """Whom one alert is for. Empty families, sectors or regions mean no restriction."""

    tier: str  # "urgent" | "newsletter"
    families: frozenset[str] = frozenset()
    common_families: frozenset[str] = frozenset()  # reaches "I don't know" subscribers
    sectors: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, not {self.tier!r}")
        for name in ("families", "common_families", "sectors", "regions"):
            object.__setattr__(self, name, _as_set(name, getattr(self, name)))
        if not self.common_families <= self.families:
            raise ValueError("common_families must be a subset of families")


def _as_set(name: str, values: Iterable[str]) -> frozenset[str]:
    """A frozenset, refusing a bare string (which would become a set of letters)."""
    if isinstance(values, str):
        raise TypeError(f"{name} must be a collection of ids, not the string {values!r}")
    return frozenset(values)


def targeting_for(
    tier: str | None,
    families: Iterable[str],
    catalogue: Catalogue,
    sectors: Iterable[str] = (),
    regions: Iterable[str] = (),
) -> Targeting | None:
    """The targeting of a scored advisory, deciding as match_scored does: family ids the
    catalogue does not know are dropped; an urgent alert with no known family concerns
    everyone. None when it concerns nobody: tier None or "ignore", or a newsletter item with
    no known family (match_scored matches no profile for those)."""
    if tier is None or tier == "ignore":
        return None
    known = [family for family in map(catalogue.get, families) if family is not None]
    if not known and tier != "urgent":
        return None
    return Targeting(
        tier,
        frozenset(family.id for family in known),
        frozenset(family.id for family in known if family.sme_common),
        _as_set("sectors", sectors),
        _as_set("regions", regions),
    )


# ------------------------------------------------------------------ reference, one member


def in_audience(member: Member, targeting: Targeting) -> bool:
    """Active and concerned by product, sector and region: before any channel preference."""
    return (
        member.active
        and _runs_targeted_product(member, targeting)
        and _within(member.sector, targeting.sectors)
        and _within(member.region, targeting.regions)
    )


def _runs_targeted_product(member: Member, targeting: Targeting) -> bool:
    if not targeting.families or not member.families.isdisjoint(targeting.families):
        return True
    return not member.knows_products and bool(targeting.common_families)


def _within(value: str, allowed: frozenset[str]) -> bool:
    return not allowed or value in allowed


def _wants_email(member: Member) -> bool:
    return member.urgent_email and not member.email_suppressed


def _wants_sms(member: Member) -> bool:
    return member.urgent_sms and not member.sms_suppressed


def _reads_newsletter(member: Member) -> bool:
    return member.newsletter != "none" and not member.email_suppressed


def _newsletter_instead(member: Member) -> bool:
    """Urgent news reaches a newsletter-only reader in the next issue rather than never."""
    return _reads_newsletter(member) and not member.urgent_email


CHANNEL_RULES = {  # tier -> (channel, who wants it), in channel order
    "urgent": (("email", _wants_email), ("sms", _wants_sms), ("newsletter", _newsletter_instead)),
    "newsletter": (("newsletter", _reads_newsletter),),
}


def channels_for(member: Member, targeting: Targeting) -> tuple[str, ...]:
    """The channels on which this member gets this alert; () when they get nothing."""
    if not in_audience(member, targeting):
        return ()
    return tuple(channel for channel, wants in CHANNEL_RULES[targeting.tier] if wants(member))


def recipients(targeting: Targeting, members: Iterable[Member]) -> Iterator[tuple[int, str]]:
    """(member id, channel) for every delivery, member by member: the reference answer."""
    for member in members:
        for channel in channels_for(member, targeting):
            yield member.id, channel


# ------------------------------------------------------------------ the index, all at once


class AudienceIndex:
    """The same answers as `recipients`, for a million members in milliseconds.

    Members are streamed in (`build` or `add`); each one leaves only its id in an array and
    its position in per-key arrays. `freeze()` turns those into one int bitset per key in
    linear time (building a big int bit by bit would be quadratic). Queries freeze on demand,
    so `add` may go on after a query."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._bits: dict[tuple[str, str], int] = {}  # (dimension, value) -> bitset
        self._pending: dict[tuple[str, str], array] = {}  # positions since the last freeze
        self._pending_flags = bytearray()  # one flag byte per member since the last freeze
        self._frozen = 0  # members already folded into the bitsets
        self._channels: dict[str, dict[str, int]] | None = None  # tier -> channel -> bitset
        self._dont_know = 0

    @classmethod
    def build(cls, members: Iterable[Member]) -> AudienceIndex:
        index = cls()
        for member in members:
            index.add(member)
        return index.freeze()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, member: Member) -> None:
        offset = len(self._ids) - self._frozen
        self._ids.append(member.id)
        self._pending_flags.append(_flag_byte(member))
        # Written out rather than looped over: this runs a million times per send.
        position = self._positions
        position(("sector", member.sector)).append(offset)
        position(("region", member.region)).append(offset)
        position(("language", member.language)).append(offset)
        for family in member.families:
            position(("family", family)).append(offset)
        self._channels = None

    def _positions(self, key: tuple[str, str]) -> array:
        positions = self._pending.get(key)
        if positions is None:
            positions = self._pending[key] = array("I")
        return positions

    def freeze(self) -> AudienceIndex:
        """Fold the members added since the last freeze into the bitsets."""
        if self._channels is not None:
            return self
        start, count = self._frozen, len(self._ids) - self._frozen
        for key, positions in self._pending.items():
            self._or_in(key, _bits_at(positions, count), start)
        for bit, flag in enumerate(FLAGS):
            self._or_in(("flag", flag), _flag_bits(self._pending_flags, bit), start)
        self._pending, self._pending_flags, self._frozen = {}, bytearray(), len(self._ids)
        self._channels = self._channel_bits()
        self._dont_know = ((1 << len(self)) - 1) & ~self._flag("knows_products")
        return self

    def _or_in(self, key: tuple[str, str], bits: int, start: int) -> None:
        self._bits[key] = self._bits.get(key, 0) | bits << start

    def _flag(self, name: str) -> int:
        return self._bits.get(("flag", name), 0)

    def _channel_bits(self) -> dict[str, dict[str, int]]:
        """The rules of CHANNEL_RULES as bitsets, active members only."""
        active, urgent_email = self._flag("active"), self._flag("urgent_email")
        reads = active & (self._flag("daily") | self._flag("weekly"))
        newsletter = reads & ~self._flag("email_suppressed")
        return {
            "urgent": {
                "email": active & urgent_email & ~self._flag("email_suppressed"),
                "sms": active & self._flag("urgent_sms") & ~self._flag("sms_suppressed"),
                "newsletter": newsletter & ~urgent_email,
            },
            "newsletter": {"newsletter": newsletter},
        }

    # -------------------------------------------------------------- queries

    def count(self, targeting: Targeting) -> dict[str, int]:
        """Deliveries per channel (a member on two channels counts on both)."""
        counts = dict.fromkeys(CHANNELS, 0)
        for channel, bits in self._matching(targeting):
            counts[channel] = bits.bit_count()
        return counts

    def count_by_language(self, targeting: Targeting) -> dict[str, dict[str, int]]:
        """channel -> language -> deliveries, for every language the index has seen."""
        languages = {name: self._bits[("language", name)] for name in self.languages()}
        counts = {channel: dict.fromkeys(languages, 0) for channel in CHANNELS}
        for channel, bits in self._matching(targeting):
            counts[channel] = {name: (bits & lang).bit_count() for name, lang in languages.items()}
        return counts

    def recipients(self, targeting: Targeting) -> Iterator[tuple[int, str]]:
        """(member id, channel), channel by channel, members in the order they were added."""
        for channel, bits in self._matching(targeting):
            yield from zip(compress(self._ids, _selectors(bits)), repeat(channel))

    def languages(self) -> list[str]:
        """The languages of the members, ours first, then any other in name order."""
        self.freeze()
        seen = {value for dimension, value in self._bits if dimension == "language"}
        order = {name: rank for rank, name in enumerate(LANGUAGES)}
        return sorted(seen, key=lambda name: (order.get(name, len(order)), name))

    def _matching(self, targeting: Targeting) -> Iterator[tuple[str, int]]:
        """(channel, bitset of the members who get it) for the targeting's tier."""
        self.freeze()
        audience = self._audience(targeting)
        for channel, bits in self._channels[targeting.tier].items():
            yield channel, bits & audience

    def _audience(self, targeting: Targeting) -> int:
        """Product, sector and region restrictions as one bitset; -1 (all bits) = none."""
        audience = self._any_of("sector", targeting.sectors)
        audience &= self._any_of("region", targeting.regions)
        if targeting.families:
            products = self._any_of("family", targeting.families)
            if targeting.common_families:
                products |= self._dont_know
            audience &= products
        return audience

    def _any_of(self, dimension: str, values: frozenset[str]) -> int:
        """Members with any of the values; -1 when there are none (no restriction)."""
        if not values:
            return -1
        return reduce(or_, (self._bits.get((dimension, value), 0) for value in values), 0)


def _flag_byte(member: Member) -> int:
    """The member's FLAGS as the bits of one byte."""
    return (
        member.active
        | member.knows_products << 1
        | member.urgent_email << 2
        | member.urgent_sms << 3
        | (member.newsletter == "daily") << 4
        | (member.newsletter == "weekly") << 5
        | member.email_suppressed << 6
        | member.sms_suppressed << 7
    )


_ONE = ord("1")
# For each flag bit: a table turning a flag byte into the digit "1" or "0".
_FLAG_DIGITS = [bytes(b"01"[byte >> bit & 1] for byte in range(256)) for bit in range(8)]
_DIGIT_TO_BOOL = bytes.maketrans(b"01", b"\x00\x01")


def _bits_at(positions: array, count: int) -> int:
    """A bitset with the given positions set, in linear time: one ASCII digit per member,
    written at C speed, then parsed as a base-2 number (most significant digit first)."""
    digits = bytearray(b"0") * count
    deque(map(digits.__setitem__, positions, repeat(_ONE)), maxlen=0)
    return int(digits[::-1] or b"0", 2)


def _flag_bits(flags: bytearray, bit: int) -> int:
    """The bitset of one flag, from the flag bytes (one per member)."""
    return int(flags.translate(_FLAG_DIGITS[bit])[::-1] or b"0", 2)


def _selectors(bits: int) -> bytes:
    """One 0/1 byte per position, lowest first: the selectors for itertools.compress."""
    return format(bits, "b")[::-1].encode("ascii").translate(_DIGIT_TO_BOOL)
