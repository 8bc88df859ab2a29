"""The processor's pure parts: dedup state, routing, and what a raw record becomes before any I/O."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from hookstream.errors import SettingsError
from hookstream.kafka import FETCH_MAX_WAIT_MS
from hookstream.settings import Settings
from hookstream.topics import Topics
from processor import normalize as normalize_package
from processor.app import create_app
from processor.metrics import ProcessorMetrics
from processor.normalize.x import POST_MATCHED
from processor.outputs import published
from processor.pipeline import Pipeline
from processor.records import Event, Normalized, RawRecord
from processor.route import REMEMBERED_ROUTINGS, Routes
from processor.seen import SeenStore, decode_seen, encode_seen, open_seen
from tests.support import USER_CREATED
from tests.unit.rawrecords import raw_record

TOPICS = Topics()


@pytest.fixture(params=["memory://", "rocksdb://"])
def seen_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeenStore]:
    store = open_seen(request.param, window_ms=1000, state_dir=tmp_path, seen_topic="ns.seen", partition=3)
    yield store
    store.close()


def test_seen_ids_answer_within_the_window_and_forget_after_it(seen_store: SeenStore) -> None:
    seen_store.add("a", 0)
    seen_store.add("b", 500)
    assert seen_store.seen("a", 999)
    assert not seen_store.seen("a", 1000)
    assert not seen_store.seen("c", 0)
    assert seen_store.expire(1000) == 1
    assert len(seen_store) == 1
    assert seen_store.expire(1499) == 0
    assert seen_store.expire(1500) == 1
    assert len(seen_store) == 0


def test_an_id_seen_again_after_expiry_moves_to_the_young_end(seen_store: SeenStore) -> None:
    seen_store.add("a", 0)
    seen_store.add("b", 100)
    seen_store.add("a", 1200)
    assert seen_store.expire(1150) == 1, "b expired; a, re-added later, is kept"
    assert seen_store.seen("a", 1500)
    assert len(seen_store) == 1


def test_a_disk_store_lives_under_its_directory_named_after_its_topic(tmp_path: Path) -> None:
    default = open_seen("rocksdb://", 1000, tmp_path, "ns.internal.seen", 0)
    chosen = open_seen(f"rocksdb://{tmp_path / 'elsewhere'}", 1000, tmp_path, "other.internal.seen", 0)
    assert (tmp_path / "ns.internal.seen-0").is_dir()
    assert (tmp_path / "elsewhere" / "other.internal.seen-0").is_dir()
    default.close()
    chosen.close()


def test_a_disk_store_handed_over_in_good_order_is_kept_for_the_next_owner(tmp_path: Path) -> None:
    first = open_seen("rocksdb://", 1000, tmp_path, "ns.seen", 0)
    assert first.take_over() is None
    first.add("a", 500)
    first.close(handed_over_at=17)
    second = open_seen("rocksdb://", 1000, tmp_path, "ns.seen", 0)
    assert second.take_over() == 17
    assert second.seen("a", 600)
    assert len(second) == 1
    second.close()  # no hand-over this time (a crash, a fence, a failed batch): nothing is kept
    third = open_seen("rocksdb://", 1000, tmp_path, "ns.seen", 0)
    assert third.take_over() is None
    assert not third.seen("a", 600)
    assert len(third) == 0
    third.close()


def test_a_disk_store_its_owner_crashed_with_starts_empty(tmp_path: Path) -> None:
    crashed = open_seen("rocksdb://", 1000, tmp_path, "ns.seen", 0)
    assert crashed.take_over() is None
    crashed.add("a", 500)
    del crashed  # never closed: RocksDB keeps what was written, but no hand-over mark
    again = open_seen("rocksdb://", 1000, tmp_path, "ns.seen", 0)
    assert again.take_over() is None
    assert not again.seen("a", 600)
    again.close()


def post(*, tags: str | None = None, event_type: str = "com.x.post.matched") -> Event:
    extensions = {"hstags": tags} if tags is not None else {}
    return Event(
        "x:post:1",
        event_type,
        "urn:hookstream:x",
        "2021-01-06T18:40:40Z",
        {},
        POST_MATCHED.urn,
        "post/1",
        extensions,
    )


def test_default_routes_are_firehose_type_and_each_tag() -> None:
    assert Routes(TOPICS).topics_for(post(tags="api-posts,cats with hats")).topics == [
        "hookstream.events",
        "hookstream.x.post.matched",
        "hookstream.x.tag.api-posts",
        "hookstream.x.tag.catswithhats",
    ]


def test_a_routes_file_adds_or_replaces_but_never_drops_the_firehose(tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(
        '[[route]]\ntype = "com.x.*"\ntopics = ["social.all"]\n\n'
        '[[route]]\ntag = "api posts"\ntopics = ["devrel.posts"]\nmode = "replace"\n'
    )
    routes = Routes.load(TOPICS, routes_file)
    assert routes.topics_for(post(tags="api posts")).topics == [
        "hookstream.events",
        "social.all",
        "devrel.posts",
    ]
    assert routes.topics_for(post()).topics == [
        "hookstream.events",
        "hookstream.x.post.matched",
        "social.all",
    ]
    other = post(event_type="com.websitetoolbox.user.created")
    assert routes.topics_for(other).topics == ["hookstream.events", "hookstream.websitetoolbox.user.created"]


def test_a_routing_remembered_is_the_one_worked_out_afresh_whatever_comes_between() -> None:
    remembering = Routes(TOPICS)
    events = [
        post(event_type=f"com.x.kind{n % 5000}", tags=tags)
        for n in range(REMEMBERED_ROUTINGS + 10)
        for tags in (None, "api-posts")
    ] + [post(event_type="com.x." + "long" * 200, tags="a")]
    for event in [*events, *events[:50]]:
        assert remembering.topics_for(event) == Routes(TOPICS).topics_for(event)


@pytest.mark.parametrize(
    "content",
    [
        "[[route]]\ntopics = ['a']\n",
        "[[route]]\ntype = 'x'\ntag = 'y'\ntopics = ['a']\n",
        "[[route]]\ntype = 'x'\ntopics = []\n",
        "[[route]]\ntype = 'x'\ntopics = ['has space']\n",
        "[[route]]\ntype = 'x'\ntopics = ['a']\nmode = 'sometimes'\n",
        "not toml at all [",
    ],
)
def test_a_bad_routes_file_stops_startup_naming_the_setting(tmp_path: Path, content: str) -> None:
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(content)
    with pytest.raises(SettingsError) as raised:
        Routes.load(TOPICS, routes_file)
    assert raised.value.name == "HOOKSTREAM_ROUTES"


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(Settings(), ProcessorMetrics(), Routes(TOPICS))


def test_an_event_goes_to_the_keyed_topic_under_its_subject_with_its_id_and_routing(
    pipeline: Pipeline,
) -> None:
    (output,) = pipeline.outputs_of(raw_record("websitetoolbox", USER_CREATED))
    assert output.topic == "hookstream.internal.keyed"
    assert output.key == b"user/181855"
    assert orjson.loads(output.value)["subject"] == "user/181855"
    headers = dict(output.headers)
    assert headers["hs-event-id"] == b"websitetoolbox:1534"
    assert headers["hs-out-topics"] == b"hookstream.events,hookstream.websitetoolbox.user.created"
    assert headers["hs-type"] == b"com.websitetoolbox.user.created"
    assert headers["content-type"] == b"application/cloudevents+json"


def test_a_dead_letter_keeps_the_raw_bytes_and_headers_and_says_why(pipeline: Pipeline) -> None:
    raw = raw_record("websitetoolbox", b"{oops", key=b"delivery-7")
    (keyed,) = pipeline.outputs_of(raw)
    (dead,) = published(keyed)  # what the dedup stage publishes
    assert (dead.topic, dead.key, dead.value) == ("hookstream.dlq", b"delivery-7", b"{oops")
    headers = dict(dead.headers)
    assert headers.pop("hs-error") == b"invalid_json"
    assert headers.pop("hs-origin") == b"hookstream.raw.websitetoolbox/0/42"
    assert headers.pop("hs-error-detail")
    assert headers == dict(raw.headers), "exactly the raw headers besides the three of the dead letter"


def test_a_dead_letter_is_deduplicated_by_its_origin_like_an_event(pipeline: Pipeline) -> None:
    """Read again after a crash, a raw record's dead letter meets its first copy on one keyed
    partition under one id, so the dedup stage publishes it once."""
    first, again = (pipeline.outputs_of(raw_record("x", b"[1, 2")) for _ in range(2))
    assert first == again
    (keyed,) = first
    assert (keyed.topic, keyed.key) == ("hookstream.internal.keyed", b"hookstream.raw.x/0/42")
    assert dict(keyed.headers)["hs-event-id"] == b"dead-letter:hookstream.raw.x/0/42"


def test_an_event_too_deep_to_encode_is_a_dead_letter_not_a_crash(pipeline: Pipeline) -> None:
    deep = b'{"type": "a.b", "data": ' + b'{"x": ' * 300 + b"1" + b"}" * 300 + b"}"
    standard = raw_record("standard", deep, extra_headers={"hs-name": b"acme", "hs-http-webhook-id": b"m1"})
    (dead,) = pipeline.outputs_of(standard)
    assert dict(dead.headers)["hs-error"] == b"schema"


def test_a_normalizer_bug_is_a_dead_letter_not_a_stuck_partition(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raw: RawRecord) -> Normalized:
        raise KeyError("bug")

    monkeypatch.setitem(normalize_package.NORMALIZERS, "websitetoolbox", broken)
    (dead,) = pipeline.outputs_of(raw_record("websitetoolbox", USER_CREATED))
    assert dict(dead.headers)["hs-error"] == b"normalizer_error"


def test_a_state_record_holds_a_batch_of_first_seen_ids() -> None:
    value = encode_seen(1_700_000_000_000, ["websitetoolbox:1", "x:post:2"])
    assert decode_seen(value) == (1_700_000_000_000, ["websitetoolbox:1", "x:post:2"])
    for unreadable in (None, b"", b"[]", b'{"t": "soon", "ids": []}', b'{"ids": ["a"]}'):
        assert decode_seen(unreadable) == (0, [])


async def test_the_workers_faust_consumer_waits_briefly_for_fetches(tmp_path: Path) -> None:
    """Faust hard-codes a 1.5 s fetch wait, which stalled busy partitions behind idle ones; our transport
    replaces it. Checked on the consumer Faust really builds, so a Faust upgrade that moves it fails here."""
    settings = Settings(cache_dir=tmp_path)
    app = create_app(settings, Pipeline(settings, ProcessorMetrics(), Routes(TOPICS)))
    consumer_thread = app.consumer._thread  # type: ignore[attr-defined]
    assert consumer_thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
