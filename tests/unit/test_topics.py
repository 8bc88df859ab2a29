from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookstream.topics import Topics, Unroutable, collision_key


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


# -- names derived from what a sender sends (SPEC §2 Routing) --

KAFKA_LEGAL = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def kafka_accepts(name: str) -> bool:
    """Kafka's Topic.validate, written out again from its source, independently of ours."""
    return bool(KAFKA_LEGAL.fullmatch(name)) and name not in (".", "..")


@given(st.text(max_size=400), st.sampled_from(["hookstream", "hs-test-1", "a"]))
def test_any_type_or_tag_is_a_topic_kafka_accepts_outside_our_own_or_none(text: str, namespace: str) -> None:
    topics = Topics(namespace)
    for name in (topics.for_type(text), topics.for_tag(text), topics.for_type(f"io.{text}")):
        if isinstance(name, Unroutable):
            continue
        assert kafka_accepts(name), name
        assert name.startswith(f"{namespace}.")
        assert not name.startswith((f"{namespace}.raw.", f"{namespace}.internal."))
        assert name not in (topics.events, topics.dlq, *topics.all_raw, topics.keyed, topics.seen)


def test_a_type_over_kafkas_length_gets_no_topic() -> None:
    topics = Topics()
    assert topics.for_type("com.websitetoolbox.user." + "a" * 240) is Unroutable.TOO_LONG
    longest = "acme." + "a" * (249 - len("hookstream.acme."))
    assert topics.for_type(longest) == f"hookstream.{longest}", "249 characters is still a topic"
    assert topics.for_tag("t" * 250) is Unroutable.TOO_LONG


def test_a_type_or_tag_with_nothing_left_once_cleaned_gets_no_topic() -> None:
    assert Topics().for_tag("!!! ???") is Unroutable.EMPTY
    assert Topics().for_tag("...") is Unroutable.EMPTY
    assert Topics().for_type("com.!!.??") is Unroutable.EMPTY


@pytest.mark.parametrize(
    "event_type",
    [
        "io.internal.keyed",
        "internal.keyed",
        "com.raw.x",
        "raw.websitetoolbox",
        "org.internal.seen",
        "net.raw.q",
    ],
)
def test_a_type_that_would_land_in_our_raw_or_internal_topics_gets_no_topic(event_type: str) -> None:
    assert Topics("ns").for_type(event_type) is Unroutable.RESERVED


def test_names_collide_when_dots_and_underscores_are_read_alike() -> None:
    assert collision_key("hookstream.x.tag.api.posts") == collision_key("hookstream_x_tag_api_posts")
    assert collision_key("hookstream.x.tag.api-posts") != collision_key("hookstream.x.tag.api_posts")
