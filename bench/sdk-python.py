"""Python SDK cache-hit benchmark: get_access_token calls per second in one process once the token
is cached (sync Client and AsyncClient), against a real Tokenwarden server (the scenario harness:
the server on SQLite, the test provider), and what a miss (one round trip) costs for scale.
Rates per wall-clock second and per CPU second of this process (the machine is shared).

Usage: npm run bench:sdk-python -- [millions of calls per run = 2] [runs = 5]
(the venv .cache/venv-python-sdk is made by the suite's sdks/python/python-sdk.test.ts)
"""

import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdks" / "python" / "tests"))

from harness import running_harness  # noqa: E402
from tokenwarden import AsyncClient, Client  # noqa: E402

millions = float(sys.argv[1]) if len(sys.argv) > 1 else 2
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
calls = round(millions * 1_000_000)


def measure(loop) -> tuple[float, float]:
    """Millions of calls per wall-clock second and per CPU second."""
    cpu, wall = time.process_time(), time.perf_counter()
    loop()
    return calls / (time.perf_counter() - wall) / 1e6, calls / (time.process_time() - cpu) / 1e6


def report(name: str, results: list[tuple[float, float]]) -> None:
    walls = sorted(r[0] for r in results)
    print(
        f"{name}: median {statistics.median(walls):.2f} M calls/s wall "
        f"({walls[0]:.2f}–{walls[-1]:.2f}), {statistics.median(r[1] for r in results):.2f} M per CPU s"
    )


with running_harness() as harness:
    first = harness.setup("cache_hit")
    client = Client(first["base_url"], first["api_key"])
    cid = first["connection_id"]
    client.get_access_token(cid)  # the pooled connection to the server is open from here on
    # Misses: the process's cache emptied before each call (an API key of the harness sees only
    # its own case's connection), so each is one round trip on a warm connection.
    misses = []
    for _ in range(21):
        client._cache.slots.clear()
        started = time.perf_counter()
        client.get_access_token(cid)
        misses.append((time.perf_counter() - started) * 1000)
    misses.sort()
    print(
        f"Python SDK cache hit: get_access_token in one process, {millions:g}M calls × {runs} runs "
        f"({os.cpu_count()} cpus, {platform.system()}/{platform.machine()}, "
        f"Python {platform.python_version()})"
    )
    print(
        f"miss (round trip to the server, SQLite, sync Client): p50 {misses[10]:.2f} ms, "
        f"max {misses[-1]:.2f} ms"
    )
    print(f"load average before the runs: {os.getloadavg()[0]:.2f}")

    def sync_hits():
        get = client.get_access_token
        for _ in range(calls):
            get(cid)

    def sync_hits_min_ttl():
        get = client.get_access_token
        for _ in range(calls):
            get(cid, min_ttl=60)

    report("Client", [measure(sync_hits) for _ in range(runs)])
    report("Client, min_ttl=60", [measure(sync_hits_min_ttl) for _ in range(runs)])

    async def async_runs():
        async with AsyncClient(first["base_url"], first["api_key"]) as aclient:
            await aclient.get_access_token(cid)

            async def hits():
                get = aclient.get_access_token
                for _ in range(calls):
                    await get(cid)

            results = []
            for _ in range(runs):
                cpu, wall = time.process_time(), time.perf_counter()
                await hits()
                results.append(
                    (calls / (time.perf_counter() - wall) / 1e6, calls / (time.process_time() - cpu) / 1e6)
                )
            return results

    report("AsyncClient (await in one task)", asyncio.run(async_runs()))
    stats = harness.stats("cache_hit", cid)
    print(
        f"hand-outs by the server for the benchmarked connection: {stats['hand_outs']} "
        "(1 + 21 misses + 1 AsyncClient; the cache answered the rest)"
    )
    client.close()
    print(f"load average after the runs: {os.getloadavg()[0]:.2f}")
