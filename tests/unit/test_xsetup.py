"""`x setup`'s pure parts: the rules file, the plan against what X has, URL warnings, link fields, and
how a CRC answer is judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.demo import x_crc_answer
from hookstream.errors import HookstreamError
from hookstream.topics import Topics
from hookstream.xapi import Rule, RuleSpec
from hookstream.xsetup import (
    RulePlan,
    crc_verdict,
    link_params,
    load_rules,
    plan_rules,
    rule_text,
    same_url,
    url_warnings,
)

SAMPLE_RULES = Path(__file__).resolve().parents[2] / "deploy" / "x-rules.toml"


def test_the_sample_rules_file_loads() -> None:
    assert load_rules(SAMPLE_RULES) == [
        RuleSpec("from:XDevelopers -is:retweet", "api-posts"),
        RuleSpec("hookstream -is:retweet", "mentions"),
    ]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[[rule]]\nvalue = "a"\n[[rule]]\nvalue = "a"\ntag = "b"\n', "appears twice"),
        ('[[rule]]\nvalue = ""\n', "rule 1: `value` must be a non-empty string"),
        ('[[rule]]\nvalue = "a"\ntags = "b"\n', "rule 1: a [[rule]] has `value` and optionally `tag`"),
        ('[[rule]]\nvalue = "a"\ntag = 3\n', "`tag` must be a string"),
        ('[[rules]]\nvalue = "a"\n', "expected only [[rule]] tables"),
        ("[[rule]\n", "cannot read the rules file"),
    ],
)
def test_a_bad_rules_file_is_named_with_what_is_wrong(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(HookstreamError, match=str(path)) as bad:
        load_rules(path)
    assert complaint in str(bad.value)


CURRENT = [Rule("1", "kafka", "streams"), Rule("2", "cats", "pets"), Rule("3", "webhooks", "old")]
WANTED = [RuleSpec("kafka", "streams"), RuleSpec("webhooks", "hooks"), RuleSpec("dogs")]


def test_without_prune_the_plan_adds_keeps_others_and_names_conflicts() -> None:
    assert plan_rules(WANTED, CURRENT, prune=False) == RulePlan(
        add=(RuleSpec("dogs"),),
        conflicts=((CURRENT[2], RuleSpec("webhooks", "hooks")),),
        kept=(CURRENT[1],),
        same=(CURRENT[0],),
    )


def test_with_prune_the_plan_deletes_others_and_replaces_conflicts() -> None:
    plan = plan_rules(WANTED, CURRENT, prune=True)
    assert plan.add == (RuleSpec("dogs"), RuleSpec("webhooks", "hooks"))
    assert plan.delete == (CURRENT[1], CURRENT[2])
    assert plan.replaced == ((CURRENT[2], RuleSpec("webhooks", "hooks")),)
    assert plan.conflicts == ()


def test_a_plan_for_what_x_already_has_writes_nothing() -> None:
    current = [Rule("1", "kafka", "streams"), Rule("4", "dogs")]
    for prune in (False, True):
        assert not plan_rules([RuleSpec("kafka", "streams"), RuleSpec("dogs")], current, prune=prune).writes


def test_urls_x_refuses_are_warned_about() -> None:
    assert url_warnings("https://hooks.example.com/webhooks/x") == []
    warnings = url_warnings("http://127.0.0.1:8080/webhooks/x")
    assert [w.split(";")[0] for w in warnings] == [
        "X accepts only https:// webhook URLs",
        "X refuses webhook URLs with a port",
    ]
    assert "over 200 characters" in url_warnings("https://h/" + "x" * 200)[0]


def test_link_fields_are_xs_query_parameters() -> None:
    assert link_params("expansions=author_id&user.fields=username,name") == {
        "expansions": "author_id",
        "user.fields": "username,name",
    }
    assert link_params("") == {}
    with pytest.raises(HookstreamError, match="--link-fields"):
        link_params("author_id")
    with pytest.raises(HookstreamError, match="--link-fields"):
        link_params("bogus.fields=x")


def test_a_rule_says_where_its_posts_go() -> None:
    topics = Topics("hookstream")
    assert rule_text(Rule("9", "kafka", "api posts"), topics) == (
        "'kafka' tag api posts (rule 9) → hookstream.x.tag.apiposts"
    )
    assert rule_text(RuleSpec("kafka"), topics) == "'kafka' without a tag → no tag topic"
    assert rule_text(RuleSpec("kafka", "!!!"), topics) == "'kafka' tag !!! → no tag topic (empty)"
    assert rule_text(RuleSpec("kafka", "t" * 300), topics).endswith("→ no tag topic (too_long)")


EXPECTED = x_crc_answer("secret", "token")


@pytest.mark.parametrize(
    ("status", "location", "body", "verdict"),
    [
        (
            200,
            None,
            b'{"response_token": "%s"}' % EXPECTED.encode(),
            "answered 200 with the right response_token",
        ),
        (301, "https://elsewhere/", b"", "answered 301 (redirect to https://elsewhere/); X does not follow"),
        (404, None, b"", "answered 404: is HOOKSTREAM_X_CONSUMER_SECRETS set"),
        (503, None, b"", "answered 503, X expects 200"),
        (200, None, b"<html>", "answered 200 without JSON"),
        (
            200,
            None,
            b'{"response_token": "sha256=AAAA"}',
            "does not match the first HOOKSTREAM_X_CONSUMER_SECRETS",
        ),
    ],
)
def test_a_crc_answer_is_judged_as_x_judges_it(
    status: int, location: str | None, body: bytes, verdict: str
) -> None:
    ok, reason = crc_verdict(status, location, body, EXPECTED)
    assert ok == (verdict == "answered 200 with the right response_token")
    assert reason.startswith(verdict) or verdict in reason


def test_xs_webhook_is_recognised_however_x_writes_the_url_back() -> None:
    assert same_url("https://Hooks.Example.com/webhooks/x", "https://hooks.example.com/webhooks/x/")
    assert not same_url("https://hooks.example.com/webhooks/x", "https://hooks.example.com/webhooks/x2")
    assert not same_url("https://hooks.example.com/webhooks/x", "http://hooks.example.com/webhooks/x")
