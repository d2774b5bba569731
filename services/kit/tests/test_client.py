"""The kit client: retries only when idempotent, errors passed through, deadlines."""

from __future__ import annotations

import pytest

from services.kit.client import ClientPool, SliceClient
from services.kit.errors import DeadlineExceeded, ServiceUnavailable, SliceError, UpstreamError
from services.kit.testing import TEST_TOKEN, free_port


@pytest.fixture
async def pool():
    p = ClientPool(caller="test", token=TEST_TOKEN, retries=2, timeout_s=5)
    yield p
    await p.close()


async def test_idempotent_get_is_retried_on_503(demo: str, pool: ClientPool) -> None:
    client = SliceClient(pool, demo)
    body = await client.request("GET", "/v1/demo/flaky", params={"fail": 2})
    assert body == {"calls": 3}


async def test_retries_are_bounded(demo: str, pool: ClientPool) -> None:
    client = SliceClient(pool, demo)
    with pytest.raises(UpstreamError):
        await client.request("GET", "/v1/demo/flaky", params={"fail": 10})


async def test_post_is_not_retried(demo: str, pool: ClientPool) -> None:
    client = SliceClient(pool, demo)
    with pytest.raises(UpstreamError):
        await client.request("POST", "/v1/demo/flaky-post", json_body={})
    # one call only: the next GET sees the counter at 2 (1 post + itself)
    assert await client.request("GET", "/v1/demo/flaky", params={"fail": 0}) == {"calls": 2}


async def test_caller_errors_pass_through_with_status_and_message(
    demo: str, pool: ClientPool
) -> None:
    client = SliceClient(pool, demo)
    with pytest.raises(SliceError) as info:
        await client.request("GET", "/v1/demo/missing")
    assert info.value.status_code == 404
    assert info.value.message == "thing 'x' not found"


async def test_unreachable_service_is_503(pool: ClientPool) -> None:
    client = SliceClient(pool, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceUnavailable) as info:
        await client.request("GET", "/health")
    assert "unreachable" in info.value.message


async def test_exhausted_deadline_fails_fast(demo: str, pool: ClientPool) -> None:
    import time

    from services.kit.context import deadline_var

    token = deadline_var.set(time.monotonic() - 1)
    try:
        with pytest.raises(DeadlineExceeded):
            await SliceClient(pool, demo).request("GET", "/health")
    finally:
        deadline_var.reset(token)


async def test_one_pool_reuses_connections(demo: str, pool: ClientPool) -> None:
    client = SliceClient(pool, demo)
    for _ in range(20):
        await client.request("GET", "/health")
    connector = pool.session.connector
    assert connector is not None
    # keep-alive: all 20 sequential calls went over one connection
    assert sum(len(v) for v in connector._conns.values()) == 1
