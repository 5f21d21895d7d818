"""Contract of task claims, for both backends: the coordinator database (local robots) and Redis
(remote robots). Same allocation as the balanced allocator, sticky, durable, atomic under
concurrent claims."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from lwd.fleet.dataplane import DataPlaneConfig
from lwd.fleet.dataplane.allocator import balanced_counts, choose_task
from lwd.fleet.dataplane.claims import RedisTaskClaims, SqliteTaskClaims, claims_url_for, open_task_claims
from lwd.fleet.robot.client import task_weights_for

MW8 = task_weights_for("mw8")  # 4 short tasks (weight 1) + 4 long tasks (weight 3)


@pytest.fixture
def claims_url(backend, tmp_path, request):
    if backend == "redis":
        return request.getfixturevalue("redis_url")
    return f"sqlite://{tmp_path / 'coordinator.db'}"


def sequential_allocation(n: int, weights: dict[str, float]) -> list[str]:
    """What the allocator gives robots 0..n-1 claiming one after the other."""
    current: dict[str, str] = {}
    for i in range(n):
        current[f"robot-{i:03d}"] = choose_task(balanced_counts(current, weights), weights)
    return [current[f"robot-{i:03d}"] for i in range(n)]


def test_claims_allocate_like_the_balanced_allocator_and_are_sticky_and_durable(claims_url):
    claims = open_task_claims(claims_url)
    got = [claims.claim(f"robot-{i:03d}", MW8) for i in range(16)]
    assert got == sequential_allocation(16, MW8)
    counts = Counter(got)
    assert all(counts[t] == (1 if w == 1.0 else 3) for t, w in MW8.items())  # the paper's split
    assert claims.claim("robot-005", MW8) == got[5]  # sticky
    claims.close()
    again = open_task_claims(claims_url)  # durable: a new connection (a restarted robot) sees them
    assert again.assignments() == {f"robot-{i:03d}": t for i, t in enumerate(got)}
    assert [again.claim(f"robot-{i:03d}", MW8) for i in range(16)] == got
    again.close()


def test_unweighted_task_is_reassigned_and_release_frees_a_slot(claims_url):
    claims = open_task_claims(claims_url)
    weights = {"a": 1.0, "b": 1.0}
    assert [claims.claim(r, weights) for r in ("r0", "r1", "r2")] == ["a", "b", "a"]
    claims.release("r1")
    assert "r1" not in claims.assignments()
    assert claims.claim("r3", weights) == "b"  # the released robot's task is the under-served one
    # a robot whose task lost its weight moves to the most under-served remaining task
    assert claims.claim("r0", {"b": 1.0, "c": 2.0}) == "c"
    assert claims.assignments()["r0"] == "c"
    claims.close()


def test_concurrent_claims_never_double_count(claims_url):
    """16 robots on separate connections claim at once: the outcome equals one-after-the-other."""
    n = 16
    barrier = threading.Barrier(n)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def robot(i: int) -> None:
        claims = open_task_claims(claims_url)
        try:
            barrier.wait()
            results[f"robot-{i:03d}"] = claims.claim(f"robot-{i:03d}", MW8)
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            claims.close()

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert Counter(results.values()) == Counter(sequential_allocation(n, MW8))
    claims = open_task_claims(claims_url)
    assert claims.assignments() == results
    claims.close()


def test_redis_claim_that_races_is_decided_again(redis_url):
    """A claim landing between another claim's read and its EXEC aborts it; the retry sees it."""
    weights = {"a": 1.0, "b": 1.0}
    first, other = RedisTaskClaims(redis_url), RedisTaskClaims(redis_url)

    def interfere() -> None:
        first.before_commit = None  # only once
        assert other.claim("r-other", weights) == "a"

    first.before_commit = interfere
    assert first.claim("r-first", weights) == "b"  # decided "a" on the stale read, then "b"
    assert first.attempts == 2
    assert first.assignments() == {"r-other": "a", "r-first": "b"}
    first.close()
    other.close()


def test_backend_follows_the_data_plane(tmp_path):
    local = DataPlaneConfig.local(tmp_path / "fleet")
    url = claims_url_for(local, tmp_path / "fleet")
    assert url == f"sqlite://{(tmp_path / 'fleet' / 'coordinator.db').resolve()}"
    claims = open_task_claims(url)
    assert isinstance(claims, SqliteTaskClaims)
    claims.close()
    remote = DataPlaneConfig(events="redis://10.0.0.5:6379/0", store="s3://bucket/lwd")
    assert claims_url_for(remote, None) == "redis://10.0.0.5:6379/0"  # no coordinator.db needed
    with pytest.raises(ValueError, match="Redis data plane or the fleet root"):
        claims_url_for(local, None)
    with pytest.raises(ValueError, match="unknown task claims URL"):
        open_task_claims("http://nowhere")
