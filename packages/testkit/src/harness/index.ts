export { runWorkers } from './run-workers.ts';
export type { RunWorkersOptions, WorkerResult, WorkerSpec } from './run-workers.ts';
export { onLines, spawnTs, TailBuffer } from './spawn.ts';
export { reportResult, waitForStart, workerCount, workerIndex } from './worker.ts';
