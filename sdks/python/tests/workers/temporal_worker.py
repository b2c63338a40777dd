"""One worker process of the Temporal test: its own AsyncClient and helpers, at most 10 activities
at once. Prints "ready" once polling; stops when stdin closes."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client as TemporalClient  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from temporal_app import FanOutWorkflow, ResourceActivities  # noqa: E402
from tokenwarden import AsyncClient  # noqa: E402
from tokenwarden.temporal import ActivityHelpers  # noqa: E402


async def main(address: str, namespace: str, task_queue: str, base_url: str, api_key: str) -> None:
    temporal = await TemporalClient.connect(address, namespace=namespace)
    async with AsyncClient(base_url, api_key) as tokenwarden:
        activities = ResourceActivities(ActivityHelpers(tokenwarden, min_ttl=60))
        async with Worker(
            temporal,
            task_queue=task_queue,
            workflows=[FanOutWorkflow],
            activities=[activities.call_resource],
            max_concurrent_activities=10,
        ):
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main(*sys.argv[1:6]))
