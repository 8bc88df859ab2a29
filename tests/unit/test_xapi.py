"""The X API client against the answers `X_API.md` records (success, errors, empty lists), and its rate
limit wait, bearer header and rule pages against the local stand-in (`tests/fake_x.py`) on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hookstream.settings import Secret
from hookstream.xapi import (
    Link,
    Problem,
    Rule,
    RuleSpec,
    Webhook,
    XApi,
    XApiError,
    env_proxy,
    links,
    problem,
    rate_limit_reset,
    rule_add,
    rule_delete_failures,
    rules,
    validated,
    webhooks,
)
from tests.fake_x import BEARER, FakeX
from tests.support import X_SECRET

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
CRC_FAILED = {
    "errors": [{"message": "CrcValidationFailed: Invalid response_token"}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}
DUPLICATE = {
    "meta": {
        "sent": "2022-05-01T10:00:00.000Z",
        "summary": {"created": 0, "not_created": 1, "valid": 0, "invalid": 1},
    },
    "errors": [
        {
            "value": "from:x",
            "id": "1520000000000000000",
            "title": "DuplicateRule",
            "type": "https://api.twitter.com/2/problems/duplicate-rules",
        }
    ],
}
INVALID = {
    "value": "-cats",
    "details": ["Rules must contain a non-negation term (at position 1)"],
    "title": "UnprocessableEntity",
    "type": "https://api.twitter.com/2/problems/invalid-rules",
}
ADDED = {  # docs.x.com filtered-stream quickstart
    "data": [
        {"value": "cat has:media", "tag": "cats with media", "id": "1273026480692322304"},
        {"value": "dog has:media", "id": "1273026480692322305"},
    ],
    "meta": {
        "sent": "2020-06-16T22:55:39.356Z",
        "summary": {"created": 2, "not_created": 0, "valid": 2, "invalid": 0},
    },
}
LINK = {
    "application_id": "29893711",
    "fields": ["user.fields=username", "name"],
    "webhook_id": "1952390923729424384",
}


def test_a_401_problem_document_gives_xs_title_and_detail() -> None:
    assert problem(401, UNAUTHORIZED).lines() == ["X answered 401 Unauthorized"]
    assert problem(400, CRC_FAILED).lines() == [
        "X answered 400 Invalid Request: One or more parameters to your request was invalid.",
        "  CrcValidationFailed: Invalid response_token",
    ]


def test_other_error_bodies_still_read_as_problems() -> None:
    v11 = problem(429, {"errors": [{"code": 88, "message": "Rate limit exceeded"}]})
    assert v11 == Problem(429, "Too Many Requests", reasons=("Rate limit exceeded",))
    proxy = problem(502, None, "<html>\n<body>Bad   gateway</body></html>")
    assert proxy.lines() == ["X answered 502 Bad Gateway: <html> <body>Bad gateway</body></html>"]
    nested = {
        "errors": [
            {"errors": [{"parameters": {}, "message": "Rule does not exist"}], "title": "Invalid Request"}
        ]
    }
    assert problem(400, nested).reasons == ("Rule does not exist",)


def test_a_rule_add_reports_what_was_created_and_why_the_others_were_not() -> None:
    added = rule_add(ADDED)
    assert added.created == (
        Rule("1273026480692322304", "cat has:media", "cats with media"),
        Rule("1273026480692322305", "dog has:media", None),
    )
    assert added.errors == ()
    added.check()
    duplicate = rule_add(DUPLICATE)
    assert duplicate.created == ()
    assert duplicate.errors == ("DuplicateRule 'from:x' (rule 1520000000000000000)",)
    invalid = rule_add({"meta": DUPLICATE["meta"], "errors": [INVALID]})
    assert invalid.errors == (
        "UnprocessableEntity '-cats': Rules must contain a non-negation term (at position 1)",
    )
    with pytest.raises(XApiError) as refused:
        invalid.check()
    assert str(refused.value).splitlines()[1].strip().startswith("UnprocessableEntity '-cats'")


def test_rule_deletes_name_every_rule_x_did_not_delete() -> None:
    assert rule_delete_failures({"meta": {"sent": "…", "summary": {"deleted": 2, "not_deleted": 0}}}) == ()
    assert rule_delete_failures({"meta": {"summary": {"deleted": 0, "not_deleted": 1}}}) == (
        "1 rule(s) not deleted",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"meta": {"sent": "2026-12-01T00:00:00.000Z", "result_count": 0}}, []),
        (
            {"data": [{"id": "1", "value": "kafka", "tag": "streams"}, {"id": "2", "value": "cats"}]},
            ["1", "2"],
        ),
    ],
)
def test_rules_lists_with_and_without_data(body: dict[str, Any], expected: list[str]) -> None:
    assert [rule.id for rule in rules(body)] == expected


def test_webhook_lists_accept_the_documented_and_the_live_empty_shape() -> None:
    assert webhooks({"data": [], "meta": {"result_count": 0}}) == []
    assert webhooks({"meta": {"result_count": 0}}) == []
    listed = {
        "data": [
            {
                "created_at": "2025-01-15T12:00:00.000Z",
                "id": "77",
                "url": "https://h/webhooks/x",
                "valid": False,
            }
        ]
    }
    assert webhooks(listed) == [Webhook("77", "https://h/webhooks/x", False, "2025-01-15T12:00:00.000Z")]


def test_links_accept_data_links_and_a_plain_data_list() -> None:
    expected = [Link("1952390923729424384", ("user.fields=username", "name"))]
    assert links({"data": {"links": [LINK]}}) == expected
    assert links({"data": [LINK]}) == expected
    assert links({"data": {"links": []}}) == links({}) == []


def test_a_revalidation_is_valid_only_when_x_says_so() -> None:
    assert validated({"data": {"valid": True}})
    assert not validated({"data": {"valid": False}})
    assert validated({"data": {"attempted": True}})  # OpenAPI <= 2.166
    assert not validated({})


def test_the_rate_limit_reset_header() -> None:
    headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "1764633600"}
    assert rate_limit_reset(headers) == 1764633600
    assert rate_limit_reset({}) is None
    assert rate_limit_reset({"x-rate-limit-reset": "soon"}) is None


# -- against the stand-in --


@pytest.fixture
async def fake_x() -> AsyncIterator[tuple[FakeX, str]]:
    fake = FakeX(consumer_secret=X_SECRET)
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


class Waits:
    """A clock that moves only when the client sleeps, and the sleeps it took."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.taken: list[float] = []
        self.said: list[str] = []

    async def sleep(self, seconds: float) -> None:
        self.taken.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


async def client(
    url: str, waits: Waits, *, token: str = BEARER, max_wait_s: float = 900
) -> tuple[XApi, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    api = XApi(
        session, url, Secret(token), waits.said.append, max_wait_s, sleep=waits.sleep, clock=waits.clock
    )
    return api, session


async def test_rules_are_read_page_by_page(fake_x: tuple[FakeX, str]) -> None:
    fake, url = fake_x
    ids = [fake.add_rule(f"term{n}", f"tag{n}") for n in range(5)]
    api, session = await client(url, Waits(0))
    async with session:
        assert [rule.id for rule in await api.rules(page_size=2)] == ids
    assert fake.answered[200] == 3


async def test_a_rule_add_is_answered_201_and_a_second_add_of_the_value_is_a_duplicate(
    fake_x: tuple[FakeX, str],
) -> None:
    fake, url = fake_x
    api, session = await client(url, Waits(0))
    async with session:
        added = await api.add_rules([RuleSpec("kafka", "streams")])
        again = await api.add_rules([RuleSpec("kafka", "other-tag"), RuleSpec("webhooks")])
    assert [(r.value, r.tag) for r in added.created] == [("kafka", "streams")]
    assert again.errors == (f"DuplicateRule 'kafka' (rule {added.created[0].id})",)
    assert [r.value for r in again.created] == ["webhooks"]
    assert fake.answered[201] == 2


async def test_a_429_is_waited_out_until_x_rate_limit_reset_and_said(fake_x: tuple[FakeX, str]) -> None:
    fake, url = fake_x
    waits = Waits(time.time())
    fake.clock = waits.clock  # time passes for X when the client sleeps
    fake.rate_limit_next(30)
    started = waits.now
    api, session = await client(url, waits)
    async with session:
        answer = await api.call("GET", "/2/webhooks")
    assert answer.status == 200
    assert waits.taken == [pytest.approx(fake.limited_until - started + 1.0)]
    (said,) = waits.said
    assert said.startswith("X rate limit on GET /2/webhooks: waiting ")
    assert said.endswith("(x-rate-limit-reset)")


async def test_a_reset_beyond_max_wait_is_an_error_without_waiting(fake_x: tuple[FakeX, str]) -> None:
    fake, url = fake_x
    fake.rate_limit_next(3600)
    waits = Waits(time.time())
    api, session = await client(url, waits, max_wait_s=900)
    async with session:
        with pytest.raises(XApiError) as limited:
            await api.rules()
    assert limited.value.problem.status == 429
    assert "longer than --max-wait allows" in limited.value.problem.detail
    assert waits.taken == []


async def test_a_wrong_token_is_xs_401_and_the_token_is_in_no_message(fake_x: tuple[FakeX, str]) -> None:
    _, url = fake_x
    api, session = await client(url, Waits(0), token="wrong-token-123456")
    async with session:
        with pytest.raises(XApiError) as refused:
            await api.webhooks()
    assert refused.value.body == UNAUTHORIZED
    assert "wrong-token" not in str(refused.value)
    assert "wrong-token" not in repr(api)


async def test_a_usage_cap_is_not_waited_for() -> None:
    async def capped(_: web.Request) -> web.Response:
        body = {
            "title": "UsageCapExceeded",
            "type": "https://api.x.com/2/problems/usage-capped",
            "detail": "Usage cap exceeded",
        }
        return web.json_response(body, status=429, headers={"x-rate-limit-reset": "1"})

    app = web.Application()
    app.router.add_get("/2/webhooks", capped)
    server = TestServer(app)
    await server.start_server()
    waits = Waits(0)
    api, session = await client(str(server.make_url("")).rstrip("/"), waits)
    async with session:
        with pytest.raises(XApiError) as capped_error:
            await api.webhooks()
    await server.close()
    assert capped_error.value.problem.title == "UsageCapExceeded"
    assert waits.taken == []


def test_the_proxy_comes_from_the_environment_unless_no_proxy_exempts_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("https_proxy", "http_proxy", "no_proxy", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.x.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    assert env_proxy("https://api.x.com") == "http://proxy.corp:3128"
    assert env_proxy("https://hooks.internal/webhooks/x") is None
    assert env_proxy("http://127.0.0.1:8080/webhooks/x") is None
