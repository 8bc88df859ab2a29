"""The end-to-end benchmark's load: wrk, with our script, sends forum deliveries the normalizer takes,
each with an id that says when it was sent (bench/e2e.py)."""

from __future__ import annotations

import asyncio
import tempfile
import time

import orjson
from aiohttp import web

from bench.e2e import HOPS, Moments, sent_at, wrk_script
from bench.receivers import wrk_binary
from processor.normalize import normalize
from tests.support import free_port
from tests.unit.rawrecords import raw_record


async def test_wrk_sends_forum_deliveries_whose_ids_say_when_they_were_sent() -> None:
    taken: list[tuple[float, bytes]] = []

    async def take(request: web.Request) -> web.Response:
        taken.append((time.time(), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/webhooks/websitetoolbox/token", take)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    began = time.time()
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(wrk_script(200))
            script.flush()
            url = f"http://127.0.0.1:{port}/webhooks/websitetoolbox/token"
            wrk = await asyncio.create_subprocess_exec(
                wrk_binary(), "-t1", "-c4", "-d1s", "-s", script.name, url, stdout=asyncio.subprocess.PIPE
            )
            output, _ = await wrk.communicate()
    finally:
        await runner.cleanup()
    assert wrk.returncode == 0, output.decode()
    assert taken, output.decode()
    ids = []
    for taken_at, body in taken:
        envelope = orjson.loads(body)
        assert envelope["data"]["object"]["userId"] == envelope["id"], "one user per delivery"
        event_id = normalize(raw_record("websitetoolbox", body)).events[0].id
        assert began <= sent_at(event_id) <= taken_at
        ids.append(event_id)
    assert len(set(ids)) == len(ids)


def test_no_hop_reads_below_zero_where_the_receiver_stamps_the_millisecond_it_took_a_request() -> None:
    sent = 1_700_000_000.0004  # wrk's microsecond
    moments = Moments(
        sent={"a": sent},
        received={"a": 1_700_000_000.000},  # hs-received-at: the same millisecond, 0.2 ms later
        raw={"a": 1_700_000_000.004},
        keyed={"a": 1_700_000_000.009},
        published={"a": 1_700_000_000.012},
        collected={"a": 1_700_000_000.0131},
    )
    hops = moments.hops_ms()
    assert list(hops) == list(HOPS)
    assert all(latency >= 0 for latencies in hops.values() for latency in latencies), hops
    assert round(hops["stage_one"][0]) == 5
