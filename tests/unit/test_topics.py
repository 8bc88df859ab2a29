from __future__ import annotations

from hookstream.topics import Topics


def test_default_names_are_the_contracts() -> None:
    topics = Topics()
    assert topics.all_raw == (
        "hookstream.raw.x",
        "hookstream.raw.hootsuite",
        "hookstream.raw.websitetoolbox",
        "hookstream.raw.standard",
    )
    assert topics.events == "hookstream.events"
    assert topics.dlq == "hookstream.dlq"


def test_type_topics_drop_the_reverse_dns_prefix() -> None:
    topics = Topics()
    assert topics.for_type("com.websitetoolbox.user.created") == "hookstream.websitetoolbox.user.created"
    assert topics.for_type("com.hootsuite.assignment.resolved") == "hookstream.hootsuite.assignment.resolved"
    assert topics.for_type("com.x.post.matched") == "hookstream.x.post.matched"
    assert topics.for_type("acme.invoice.paid") == "hookstream.acme.invoice.paid"


def test_tag_topics_keep_only_safe_characters() -> None:
    assert Topics().for_tag("cats with images!") == "hookstream.x.tag.catswithimages"


def test_a_namespace_prefixes_every_name() -> None:
    topics = Topics("staging")
    assert topics.raw("x") == "staging.raw.x"
    assert topics.events == "staging.events"
    assert topics.for_type("com.x.post.matched") == "staging.x.post.matched"
