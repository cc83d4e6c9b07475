"""`python -m bench.twin_worker`: a worker for the no-op twin on a task queue of its own.

Configured like `worker.py` (the same settings, client and payload converter); the task
queue is `BENCH_TWIN_TASK_QUEUE`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import uvloop
from temporalio.worker import Worker

import bench
from bench.twin import TWIN_ACTIVITIES, TwinWorkflow
from infra.settings import get_settings
from infra.temporal import connect_temporal, data_converter
from worker import workflow_runner, write_workflow_bytecode

log = logging.getLogger("bench.twin_worker")


async def main() -> None:
    settings = get_settings()
    write_workflow_bytecode(bench)
    client = await connect_temporal(settings, data_converter(settings))
    task_queue = os.environ["BENCH_TWIN_TASK_QUEUE"]
    # The service's worker settings and sandbox: the twin differs from the saga in its
    # work only.
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[TwinWorkflow],
        activities=list(TWIN_ACTIVITIES),
        workflow_runner=workflow_runner(),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        log.info("Worker polling %s", task_queue)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvloop.run(main())
