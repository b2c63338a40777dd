// The child side of runWorkers: helpers a worker script calls. The protocol is line-based on
// stdio so a worker needs nothing but process.stdout/stdin: `TW_READY` / `GO` for the start
// barrier and `TW_RESULT <json>` for the result.

function intFromEnv(name: string): number {
  const value = Number(process.env[name]);
  if (process.env[name] === undefined || !Number.isInteger(value) || value < 0) {
    throw new Error(`${name} is not set: run this script through runWorkers()`);
  }
  return value;
}

/** This worker's index, 0 ≤ index < workerCount(). */
export function workerIndex(): number {
  return intFromEnv('TW_WORKER_INDEX');
}

export function workerCount(): number {
  return intFromEnv('TW_WORKER_COUNT');
}

/** Reports this worker's result; await it before process.exit() so the line is not lost. */
export function reportResult(value: unknown): Promise<void> {
  const line = `TW_RESULT ${JSON.stringify(value ?? null)}\n`;
  return new Promise((resolve, reject) => {
    process.stdout.write(line, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Announces readiness and waits until the parent releases every worker at once (runWorkers with
 * `barrier: true`), so they race for real instead of in the order they happened to boot.
 */
export function waitForStart(): Promise<void> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    let pending = '';
    const finish = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      // Paused, stdin no longer keeps the worker alive once its work is done.
      stdin.pause();
      if (error) reject(error);
      else resolve();
    };
    const onData = (chunk: string): void => {
      pending += chunk;
      if (pending.split('\n').slice(0, -1).includes('GO')) finish();
    };
    const onEnd = (): void => {
      finish(
        new Error('stdin closed before GO: start this worker with runWorkers({ barrier: true })'),
      );
    };
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    process.stdout.write('TW_READY\n');
  });
}
