// What a process's idleness costs its next query: CPU time of one store statement on Postgres,
// run back to back and after the process slept. In a refresh storm every process has been idle
// before the barrier opens and while the provider answers, so its statements run cold.
// Usage: npm run bench:idle -- [samples]
import { cpus } from 'node:os';
import { openPostgresStore } from '@tokenwarden/core';
import { newCredential } from '@tokenwarden/testkit/conformance';
import { startPostgres } from '@tokenwarden/testkit/postgres';

const samples = Number(process.argv[2] ?? 21);
const server = await startPostgres();
const store = openPostgresStore({ connectionString: server.url });
await store.migrate();
await store.insertCredential(newCredential('c1'));

const statements: Record<string, () => Promise<unknown>> = {
  getCredential: () => store.getCredential('c1'),
  // Lost races: nothing changes, so every sample runs the same statement on the same row.
  'acquireLease (lost)': () =>
    store.acquireLease('c1', { expectedVersion: 99, leaseId: 'x', leaseMs: 1_000 }),
  'recordIntent (no lease)': () => store.recordIntent('c1', 'none', 'hash'),
};

console.log(`${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log('statement                 idle before  CPU per statement (median of ' + samples + ')');
for (const [name, run] of Object.entries(statements)) {
  for (let i = 0; i < 2_000; i++) await run(); // warm: compiled, connection open
  for (const idleMs of [0, 50, 300]) {
    const cpuMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      if (idleMs > 0) await new Promise((resolve) => setTimeout(resolve, idleMs));
      const before = process.cpuUsage();
      await run();
      const used = process.cpuUsage(before);
      cpuMs.push((used.user + used.system) / 1000);
    }
    cpuMs.sort((a, b) => a - b);
    const median = cpuMs[Math.floor(samples / 2)]!;
    console.log(`${name.padEnd(25)} ${`${idleMs} ms`.padEnd(12)} ${median.toFixed(3)} ms`);
  }
}
await store.close();
await server.close();
