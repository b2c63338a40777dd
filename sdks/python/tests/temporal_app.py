"""The workflow and activity of the Temporal tests, importable by the worker processes (the
workflow module imports nothing of Tokenwarden: the sandbox re-imports it)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@dataclass
class FanOut:
    connection_id: str
    resource_url: str
    activities: int
    hold_seconds: float = 0.0


@workflow.defn
class FanOutWorkflow:
    """Runs `activities` copies of call_resource at once; returns what each returned."""

    @workflow.run
    async def run(self, args: FanOut) -> list[dict]:
        return await asyncio.gather(
            *[
                workflow.execute_activity(
                    "call_resource",
                    args,
                    start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
                for _ in range(args.activities)
            ]
        )


class ResourceActivities:
    """call_resource: the resource server's answer to the connection's token, via the helpers."""

    def __init__(self, helpers) -> None:
        self._helpers = helpers

    @activity.defn(name="call_resource")
    async def call_resource(self, args: FanOut) -> dict:
        response = await self._helpers.fetch(args.connection_id, args.resource_url)
        # Held a moment, so that each worker process has its share running at once.
        await asyncio.sleep(args.hold_seconds)
        return {"status": response.status_code, "pid": os.getpid()}
