"""The Temporal helpers against a real Temporal server and a real Tokenwarden server: 20
concurrent activities on 2 worker processes share 1 redemption; needs_reauth fails the activity
with the non-retryable TokenwardenNeedsReauth; heartbeats while waiting; the failure types are
the TypeScript package's."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, RegisterNamespaceRequest
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from harness import REPO_ROOT
from temporal_app import FanOut, FanOutWorkflow, ResourceActivities
from tokenwarden import AsyncClient, Client, errors
from tokenwarden.temporal import ActivityHelpers, FailureTypes, SyncActivityHelpers, to_application_error

WORKER = Path(__file__).parent / "workers" / "temporal_worker.py"


async def fresh_namespace(address: str) -> TemporalClient:
    """A namespace of this test's own, registered through the workflow service."""
    name = f"tw-py-{uuid.uuid4().hex[:12]}"
    client = await TemporalClient.connect(address)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )
    # Registered is not yet usable: the server's namespace cache learns it later, and a worker
    # that polls before then backs off for up to a minute. A task queue's description goes
    # through that cache, so once it answers the workers can start.
    client = await TemporalClient.connect(address, namespace=name)
    for _ in range(300):
        try:
            await describe_activity_queue(client, "tw-namespace-probe")
            return client
        except RPCError:
            await asyncio.sleep(0.1)
    pytest.fail(f"namespace {name} was registered but is not usable")


async def describe_activity_queue(client: TemporalClient, task_queue: str):
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )


async def wait_for_pollers(client: TemporalClient, task_queue: str, count: int) -> None:
    for _ in range(600):
        if len((await describe_activity_queue(client, task_queue)).pollers) >= count:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"fewer than {count} workers polled {task_queue}")


def test_twenty_activities_on_two_worker_processes_redeem_once(harness, temporal_address):
    setup = harness.setup("expired_refreshes_once")
    cid = setup["connection_id"]

    async def run() -> list[dict]:
        temporal = await fresh_namespace(temporal_address)
        task_queue = f"fan-out-{uuid.uuid4().hex[:8]}"
        args = [temporal_address, temporal.namespace, task_queue, setup["base_url"], setup["api_key"]]
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        try:
            for worker in workers:
                assert worker.stdout.readline().strip() == "ready"
            await wait_for_pollers(temporal, task_queue, 2)
            return await temporal.execute_workflow(
                FanOutWorkflow.run,
                FanOut(cid, setup["resource_url"], activities=20, hold_seconds=0.5),
                id=f"fan-out-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=120),
            )
        finally:
            for worker in workers:
                worker.stdin.close()
            for worker in workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()

    results = asyncio.run(run())
    assert [r["status"] for r in results] == [200] * 20
    # Each worker runs at most 10 at once and holds each for a moment: both processes took part.
    assert len({r["pid"] for r in results}) == 2
    assert harness.stats("expired_refreshes_once", cid) == {"redemptions": 1, "hand_outs": 2}


def test_needs_reauth_fails_the_activity_without_retries(harness, temporal_address):
    setup = harness.setup("needs_reauth")
    cid = setup["connection_id"]

    async def run() -> None:
        temporal = await fresh_namespace(temporal_address)
        async with AsyncClient(setup["base_url"], setup["api_key"]) as tokenwarden:
            activities = ResourceActivities(ActivityHelpers(tokenwarden))
            task_queue = f"reauth-{uuid.uuid4().hex[:8]}"
            async with Worker(
                temporal,
                task_queue=task_queue,
                workflows=[FanOutWorkflow],
                activities=[activities.call_resource],
            ):
                with pytest.raises(WorkflowFailureError) as raised:
                    await temporal.execute_workflow(
                        FanOutWorkflow.run,
                        FanOut(cid, setup["resource_url"], activities=1),
                        id=f"reauth-{uuid.uuid4().hex[:8]}",
                        task_queue=task_queue,
                        execution_timeout=timedelta(seconds=60),
                    )
        activity_error = raised.value.cause
        assert isinstance(activity_error, ActivityError)
        assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
        failure = activity_error.cause
        assert isinstance(failure, ApplicationError)
        assert failure.type == "TokenwardenNeedsReauth" and failure.non_retryable
        assert list(failure.details) == [{"connectionId": cid, "reason": "invalid_grant"}]
        assert failure.cause is None  # the SDK's error is not in history

    asyncio.run(run())


def test_the_activity_span_is_the_parent_of_the_hand_out(harness, temporal_address):
    """Temporal's TracingInterceptor on the client and the worker: the workflow's trace reaches
    the activity, and the activity's span is the parent of the SDK's request for the token."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.contrib.opentelemetry import TracingInterceptor

    setup = harness.setup("cache_hit")
    cid = setup["connection_id"]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tokenwarden-tests")

    async def run() -> None:
        registered = await fresh_namespace(temporal_address)
        temporal = await TemporalClient.connect(
            temporal_address, namespace=registered.namespace, interceptors=[TracingInterceptor(tracer)]
        )
        async with AsyncClient(setup["recording_url"], setup["api_key"]) as tokenwarden:
            activities = ResourceActivities(ActivityHelpers(tokenwarden))
            task_queue = f"traced-{uuid.uuid4().hex[:8]}"
            # The worker takes the client's interceptors.
            async with Worker(
                temporal,
                task_queue=task_queue,
                workflows=[FanOutWorkflow],
                activities=[activities.call_resource],
            ):
                with tracer.start_as_current_span("worker-job"):
                    await temporal.execute_workflow(
                        FanOutWorkflow.run,
                        FanOut(cid, setup["resource_url"], activities=1),
                        id=f"traced-{uuid.uuid4().hex[:8]}",
                        task_queue=task_queue,
                        execution_timeout=timedelta(seconds=60),
                    )

    asyncio.run(run())
    spans = exporter.get_finished_spans()
    root = next(span for span in spans if span.name == "worker-job")
    activity_span = next(span for span in spans if span.name == "RunActivity:call_resource")
    assert activity_span.context.trace_id == root.context.trace_id
    sent = [r["traceparent"] for r in harness.trace_headers("cache_hit", cid)]
    context = activity_span.context
    assert sent == [f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"]


def test_the_helpers_heartbeat_while_waiting_and_not_on_a_cache_hit(harness):
    setup = harness.setup("expired_refreshes_once")
    cid = setup["connection_id"]
    beats: list = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    async def run() -> None:
        async with AsyncClient(setup["base_url"], setup["api_key"]) as tokenwarden:
            helpers = ActivityHelpers(tokenwarden, heartbeat_interval=0.001)
            await env.run(helpers.get_access_token, cid)  # a refresh at the provider: a wait
            waited = len(beats)
            await env.run(helpers.get_access_token, cid)  # the cache
            assert waited >= 1 and len(beats) == waited

    asyncio.run(run())

    setup = harness.setup("expired_refreshes_once")
    beats.clear()
    with Client(setup["base_url"], setup["api_key"]) as tokenwarden:
        helpers = SyncActivityHelpers(tokenwarden, heartbeat_interval=0.001)
        assert env.run(helpers.get_access_token, setup["connection_id"]).expires_in > 3000
    assert len(beats) >= 1


def test_with_access_token_reruns_once_after_a_401(harness):
    setup = harness.setup("rejected_then_success")
    cid = setup["connection_id"]
    statuses: list[int] = []

    async def call(token):
        async with httpx.AsyncClient() as http:
            response = await http.get(
                setup["resource_url"], headers={"authorization": f"Bearer {token.access_token}"}
            )
        statuses.append(response.status_code)
        response.raise_for_status()  # httpx.HTTPStatusError: the default is_rejected knows its 401
        return token.version

    async def run() -> None:
        async with AsyncClient(setup["base_url"], setup["api_key"]) as tokenwarden:
            helpers = ActivityHelpers(tokenwarden)
            first = await helpers.get_access_token(cid)
            harness.reject("rejected_then_success", cid)
            assert await ActivityEnvironment().run(helpers.with_access_token, cid, call) == first.version + 1

    asyncio.run(run())
    assert statuses == [401, 200]
    assert harness.stats("rejected_then_success", cid) == {"redemptions": 1, "hand_outs": 2}


def test_errors_become_the_typescript_packages_failure_types():
    ts = (REPO_ROOT / "packages" / "temporal" / "src" / "failure-types.ts").read_text()
    ts_types = set(re.findall(r"'(Tokenwarden\w*)'", ts)) - {
        "TokenwardenReauthorizationTimeout"
    }  # raised by workflows
    py_types = {value for name, value in vars(FailureTypes).items() if name.isupper()}
    assert py_types == ts_types

    cases = [
        (errors.NeedsReauthError("m", "invalid_grant"), FailureTypes.NEEDS_REAUTH, True),
        (errors.RefreshUnavailableError("m", 7), FailureTypes.REFRESH_UNAVAILABLE, False),
        (errors.NetworkError("m"), FailureTypes.UNAVAILABLE, False),
        (errors.TokenwardenError("store_unavailable", "m", status=503), FailureTypes.UNAVAILABLE, False),
        (errors.TokenwardenError("internal_error", "m", status=500), FailureTypes.UNAVAILABLE, False),
        (errors.NotFoundError("m"), FailureTypes.NOT_FOUND, True),
        (errors.ForbiddenError("m"), FailureTypes.ACCESS_DENIED, True),
        (errors.UnauthorizedError("m"), FailureTypes.ACCESS_DENIED, True),
        (errors.InvalidRequestError("m"), FailureTypes.ERROR, True),
    ]
    for error, failure_type, non_retryable in cases:
        failure = to_application_error(error, "conn_1")
        assert (failure.type, failure.non_retryable) == (failure_type, non_retryable), error
    assert to_application_error(errors.RefreshUnavailableError("m", 7), "c").next_retry_delay == timedelta(
        seconds=7
    )
    assert to_application_error(ValueError("not ours"), "c") is None
