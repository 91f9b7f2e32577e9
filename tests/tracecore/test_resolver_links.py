"""What a GS1-Conformant resolver says, without an app: link types read, links chosen by
language, the query passed on, the linkset's shape and the description file."""

from __future__ import annotations

import pytest

from tracecore import resolver
from tracecore.resolver import DEFAULT_LINK, GS1_VOC, Entry, Link

PIP = GS1_VOC + "pip"


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("gs1:pip", PIP),
        ("https://gs1.org/voc/pip", PIP),
        ("http://gs1.org/voc/pip", PIP),
        ("https://www.gs1.org/voc/certificationInfo", GS1_VOC + "certificationInfo"),
        ("https://ref.gs1.org/voc/recallStatus", GS1_VOC + "recallStatus"),
        ("linkset", "linkset"),
        ("all", "linkset"),
        ("gs1:", None),
        ("pip", None),
        ("https://example.com/voc/pip", None),
        ("gs1:pip/../x", None),
        ("gs1:pip?x=1", None),
        ("", None),
    ],
)
def test_link_types_are_read_in_every_spelling_of_the_gs1_namespace(sent, read):
    assert resolver.link_type(sent) == read


LINKS = (
    Link(DEFAULT_LINK, "https://h/p", "default"),
    Link(PIP, "https://h/p?lang=zh", "中文", "text/html", ("zh",)),
    Link(PIP, "https://h/p?lang=en", "English", "text/html", ("en",)),
)


@pytest.mark.parametrize(
    ("languages", "href"),
    [
        (["en-GB", "en"], "https://h/p?lang=en"),
        (["zh-CN"], "https://h/p?lang=zh"),
        (["fr", "en"], "https://h/p?lang=en"),
        (["fr"], "https://h/p?lang=zh"),  # none in the client's languages: the first
        ([], "https://h/p?lang=zh"),
    ],
)
def test_a_types_link_is_chosen_by_the_clients_languages(languages, href):
    assert resolver.choose(LINKS, PIP, languages).href == href


def test_a_type_the_thing_lacks_has_no_link():
    assert resolver.choose(LINKS, GS1_VOC + "epil", ["en"]) is None


def test_the_query_is_passed_on_but_link_type_and_the_targets_own_keys():
    query = [("linkType", "gs1:pip"), ("lang", "fr"), ("utm", "a b"), ("utm", "c")]
    assert resolver.redirect_target("https://h/p?lang=en", query) == (
        "https://h/p?lang=en&utm=a+b&utm=c"
    )
    assert resolver.redirect_target("https://h/p", [("linkType", "x")]) == "https://h/p"
    assert resolver.redirect_target("https://h/p", [("a", "1")]) == "https://h/p?a=1"


def test_a_linkset_has_one_context_per_thing_with_its_anchor_and_targets_per_type():
    doc = resolver.linkset(
        [Entry("https://h/01/1", "a thing", LINKS), Entry("https://h/01/2", "above", ())]
    )
    first, second = doc["linkset"]
    assert first["anchor"] == "https://h/01/1" and first["itemDescription"] == "a thing"
    assert first[DEFAULT_LINK] == [{"href": "https://h/p", "title": "default"}]
    assert first[PIP][1] == {
        "href": "https://h/p?lang=en",
        "title": "English",
        "type": "text/html",
        "hreflang": ["en"],
    }
    assert set(second) == {"anchor", "description", "itemDescription"}


def test_link_headers_point_to_the_linkset_and_its_json_ld_context():
    assert resolver.linkset_header("https://h/01/1") == (
        '<https://h/01/1?linkType=linkset>; rel="linkset"; type="application/linkset+json"'
    )
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in resolver.context_header()


def test_the_description_file_resolves_gtins_with_the_gs1_vocabulary():
    doc = resolver.description_document(name="n", root="https://h", contact={"fn": "n"})
    assert doc["resolverRoot"] == "https://h" and doc["supportedPrimaryKeys"] == ["01"]
    assert doc["supportedLinkType"] == [{"namespace": GS1_VOC, "prefix": "gs1:"}]
