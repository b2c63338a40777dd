// One scheduler instance of the scheduler benchmark (bench/scheduler/scheduler.ts), in its own
// process with its own connection pool, like a separate machine. Line protocol on stdio:
//   child → parent: READY once connected, PROGRESS <json> every 500 ms, RESULT <json> at the end
//   parent → child: GO (start the scheduler), MARK (the warm-up is over: measure from here),
//                   STOP (stop the scheduler, report, exit)
// A closed stdin (the parent died) ends the process.
// TW_SCHEDULER_CPU_PROFILE=<dir> writes a .cpuprofile of the measured part (MARK to STOP).
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  CredentialBroker,
  KeyRing,
  openPostgresStore,
  type ProviderConfig,
  type RefreshSchedulerOptions,
  type Store,
} from '@tokenwarden/core';

/** What the parent hands every instance as JSON in TW_SCHEDULER_BENCH (loopback test values). */
export interface InstanceConfig {
  databaseUrl: string;
  /** Key ring in TOKENWARDEN_KEYS format. */
  keys: string;
  provider: ProviderConfig;
  poolMax: number;
  scheduler: RefreshSchedulerOptions;
}

/** Broker events since GO. */
export interface InstanceProgress {
  refreshed: number;
  failed: number;
  needsReauth: number;
}

/** Client-side time of one Store method: from the call to its result, pool wait included. */
export interface MethodTiming {
  calls: number;
  totalMs: number;
  maxMs: number;
}

export interface InstanceResult {
  /** Broker events from MARK to STOP. */
  measured: InstanceProgress;
  /** RSS once connected, before GO. */
  startRssMb: number;
  /** Highest RSS, sampled every 250 ms from GO (warm-up included) to the end. */
  peakRssMb: number;
  peakHeapUsedMb: number;
  /** Heap in use after a full GC, before GO, at MARK and after STOP: what is actually retained. */
  liveHeapMb: { start: number; mark: number; end: number };
  /** CPU time (user + system, all threads) from MARK to STOP, and the system (kernel) part. */
  cpuS: number;
  systemCpuS: number;
  /** Store calls from MARK to STOP. */
  store: Record<string, MethodTiming>;
}

const config = JSON.parse(process.env.TW_SCHEDULER_BENCH ?? 'null') as InstanceConfig | null;
if (!config) throw new Error('TW_SCHEDULER_BENCH is not set: run bench/scheduler/scheduler.ts');

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const send = (line: string) =>
  new Promise<void>((resolve, reject) =>
    process.stdout.write(`${line}\n`, (e) => (e ? reject(e) : resolve())),
  );

let timings: Record<string, MethodTiming> = {};
const store = timed(
  openPostgresStore({ connectionString: config.databaseUrl, poolMax: config.poolMax }),
);
const counts: InstanceProgress = { refreshed: 0, failed: 0, needsReauth: 0 };
const broker = new CredentialBroker({
  store,
  keyRing: KeyRing.parse(config.keys),
  providers: [config.provider],
  onEvent: (event) => {
    if (event.type === 'refreshed') counts.refreshed++;
    else if (event.type === 'refresh_failed') counts.failed++;
    else counts.needsReauth++;
  },
});
const scheduler = broker.scheduler(config.scheduler);

// Open every pooled connection now, so connecting is not part of the measurement.
await Promise.all(Array.from({ length: config.poolMax }, () => store.now()));

// A full GC on demand, for the retained-heap check (the flag cannot be passed through spawnTs).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const liveHeap = () => {
  gc();
  return mb(process.memoryUsage().heapUsed);
};
const startLiveHeap = liveHeap();
let peakRss = 0;
let peakHeap = 0;
const sample = () => {
  const { rss, heapUsed } = process.memoryUsage();
  peakRss = Math.max(peakRss, rss);
  peakHeap = Math.max(peakHeap, heapUsed);
};
const startRss = process.memoryUsage().rss;

const profileDir = process.env.TW_SCHEDULER_CPU_PROFILE;
const profiler = profileDir ? new Session() : undefined;
profiler?.connect();
await profiler?.post('Profiler.enable');

let timers: NodeJS.Timeout[] = [];
let mark = { cpu: process.cpuUsage(), counts: { ...counts }, liveHeap: startLiveHeap };
let stopping = false;
const lines = createInterface({ input: process.stdin });
lines.on('close', () => {
  if (!stopping) process.exit(1);
});
lines.on('line', (line) => {
  if (line === 'GO' && timers.length === 0) {
    sample();
    timers = [
      setInterval(sample, 250),
      setInterval(() => void send(`PROGRESS ${JSON.stringify(counts)}`), 500),
    ];
    scheduler.start();
  } else if (line === 'MARK') {
    const markLiveHeap = liveHeap();
    mark = { cpu: process.cpuUsage(), counts: { ...counts }, liveHeap: markLiveHeap };
    timings = {};
    void profiler?.post('Profiler.start');
  } else if (line === 'STOP' && !stopping) {
    stopping = true;
    void stop();
  }
});
await send('READY');

async function stop(): Promise<void> {
  await scheduler.stop();
  const cpu = process.cpuUsage(mark.cpu);
  sample();
  for (const timer of timers) clearInterval(timer);
  if (profiler && profileDir) {
    const { profile } = await profiler.post('Profiler.stop');
    await writeFile(
      join(profileDir, `instance-${process.pid}.cpuprofile`),
      JSON.stringify(profile),
    );
  }
  const result: InstanceResult = {
    measured: {
      refreshed: counts.refreshed - mark.counts.refreshed,
      failed: counts.failed - mark.counts.failed,
      needsReauth: counts.needsReauth - mark.counts.needsReauth,
    },
    startRssMb: mb(startRss),
    peakRssMb: mb(peakRss),
    peakHeapUsedMb: mb(peakHeap),
    liveHeapMb: { start: startLiveHeap, mark: mark.liveHeap, end: liveHeap() },
    cpuS: (cpu.user + cpu.system) / 1e6,
    systemCpuS: cpu.system / 1e6,
    store: timings,
  };
  await send(`RESULT ${JSON.stringify(result)}`);
  await store.close();
  process.exit(0);
}

/** The store with every method timed into `timings` (bench instrumentation, not engine code). */
function timed<S extends Store>(inner: S): S {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return async (...args: unknown[]) => {
        const begun = performance.now();
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          const ms = performance.now() - begun;
          const t = (timings[property] ??= { calls: 0, totalMs: 0, maxMs: 0 });
          t.calls++;
          t.totalMs += ms;
          t.maxMs = Math.max(t.maxMs, ms);
        }
      };
    },
  });
}
