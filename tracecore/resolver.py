"""What a GS1-Conformant resolver (standard 1.2) says about a GS1 Digital Link, in plain values.

A resolver links one identified thing (a product, a batch, a unit) to several sources of
information, each under a *link type* of the GS1 Web Vocabulary (``gs1:pip``, the product
information page; ``gs1:traceability``; ``gs1:certificationInfo``; ``gs1:recallStatus``...).
The client asks for one with ``?linkType=gs1:pip`` (or the full URI) and is redirected to it;
asks for them all with ``?linkType=linkset`` or ``Accept: application/linkset+json`` and gets
a linkset (RFC 9264, JSON form); asks for nothing and gets the default link. This module
reads link types, writes linksets and ``Link`` headers, and chooses among a type's links by
language; which links a thing has is the app's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = [
    "CONTEXT_URL",
    "DEFAULT_LINK",
    "GS1_VOC",
    "LINKSET_MEDIA_TYPE",
    "Entry",
    "Link",
    "choose",
    "context_header",
    "description_document",
    "link_type",
    "linkset",
    "linkset_header",
    "redirect_target",
]

#: The GS1 Web Vocabulary's namespace, as link relation types are written in a linkset.
GS1_VOC = "https://gs1.org/voc/"
#: Other spellings of the same namespace a client may send (the vocabulary declares them
#: equivalent).
_GS1_NAMESPACES = (
    GS1_VOC,
    "http://gs1.org/voc/",
    "https://www.gs1.org/voc/",
    "http://www.gs1.org/voc/",
    "https://ref.gs1.org/voc/",
)
#: The one link every identified thing has: where a request with no link type goes.
DEFAULT_LINK = GS1_VOC + "defaultLink"
LINKSET_MEDIA_TYPE = "application/linkset+json"
#: The standard's JSON-LD context for linksets, announced in a ``Link`` header with the
#: linkset so that a client can read it as JSON-LD.
CONTEXT_URL = "https://ref.gs1.org/standards/resolver/linkset-context"
#: ``linkType`` values that ask for the whole linkset (``all`` is the older spelling).
_LINKSET_WORDS = frozenset({"linkset", "all"})
#: A link type's name: what follows the namespace (``pip``, ``certificationInfo``).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class Link:
    """One link: its relation type (a full URI), target, human-readable title, media type
    and languages."""

    rel: str
    href: str
    title: str
    type: str | None = None
    hreflang: tuple[str, ...] = ()

    def as_json(self) -> dict:
        """The link's target object in a linkset (RFC 9264 §4.2.2)."""
        target: dict = {"href": self.href, "title": self.title}
        if self.type:
            target["type"] = self.type
        if self.hreflang:
            target["hreflang"] = list(self.hreflang)
        return target


@dataclass(frozen=True)
class Entry:
    """The links of one identified thing (the linkset's *link context*): its Digital Link URI
    (``anchor``), what it is in words, and its links, the default among them."""

    anchor: str
    description: str
    links: tuple[Link, ...] = field(default=())


def link_type(value: str) -> str | None:
    """The full URI of a requested link type (``gs1:pip``, ``https://gs1.org/voc/pip`` or
    the vocabulary's other spellings of its namespace), ``"linkset"`` for the whole linkset
    (``linkset`` or ``all``), or None when the value names no GS1 link type."""
    if value in _LINKSET_WORDS:
        return "linkset"
    if value.startswith("gs1:"):
        name = value[4:]
    else:
        name = next((value[len(ns) :] for ns in _GS1_NAMESPACES if value.startswith(ns)), None)
    if not name or not _NAME_CHARS.issuperset(name):
        return None
    return GS1_VOC + name


def choose(links: Iterable[Link], rel: str, languages: Sequence[str]) -> Link | None:
    """The link of type ``rel`` for a client who reads ``languages`` (best first): the
    first in one of its languages (a language matches its regional forms, ``zh`` ``zh-CN``),
    else the first of the type; None when the thing has no link of that type."""
    candidates = [link for link in links if link.rel == rel]
    for language in languages:
        base = language.lower().split("-", 1)[0]
        for link in candidates:
            if any(lang.lower().split("-", 1)[0] == base for lang in link.hreflang):
                return link
    return candidates[0] if candidates else None


def redirect_target(href: str, query: Iterable[tuple[str, str]]) -> str:
    """Where a redirect to ``href`` goes: ``href`` with the request's query pairs passed on,
    as the standard asks, except ``linkType`` and any key ``href`` already sets."""
    parts = urlsplit(href)
    own = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, v) for k, v in query if k != "linkType" and k not in own]
    if not extra:
        return href
    joined = (parts.query + "&" if parts.query else "") + urlencode(extra)
    return parts._replace(query=joined).geturl()


def linkset(entries: Sequence[Entry]) -> dict:
    """The linkset document (RFC 9264 JSON form) of the asked thing first and then each
    level up to the GTIN (the standard: the links of every level up to the primary key).
    Each context object has its ``anchor``, a ``description`` (and ``itemDescription``,
    its older name, which the GS1 linkset schema still requires), and per link relation
    type (a full URI) the list of its targets."""
    contexts = []
    for entry in entries:
        context: dict = {
            "anchor": entry.anchor,
            "description": entry.description,
            "itemDescription": entry.description,
        }
        for link in entry.links:
            context.setdefault(link.rel, []).append(link.as_json())
        contexts.append(context)
    return {"linkset": contexts}


def linkset_header(anchor: str) -> str:
    """The ``Link`` header value pointing from a thing's answers (its page, a redirect) to
    its linkset."""
    return f'<{anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET_MEDIA_TYPE}"'


def context_header() -> str:
    """The ``Link`` header value sent with a linkset: its JSON-LD context."""
    return (
        f'<{CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    )


def description_document(
    *,
    name: str,
    root: str,
    contact: dict,
) -> dict:
    """The resolver description file (``/.well-known/gs1resolver``): its name and root, the
    primary keys it resolves (GTIN, AI 01), the namespace of its link types, and who runs
    it. The default answer is always the consumer page: a brand owner cannot make the
    linkset the default (``linkTypeDefaultCanBeLinkset`` false); a client asks for it."""
    return {
        "name": name,
        "resolverRoot": root,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1_VOC, "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "supportsLanguageVariants": True,
        "validatesAIcombinations": True,
        "contact": contact,
    }
