// Runs a TestProvider in its own process (main.ts), for tests where the provider must outlive,
// or be independent of, the processes under test.
import { once } from 'node:events';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onLines, spawnTs, TailBuffer } from '../harness/spawn.ts';
import type { StartOptions } from './provider.ts';
import { RemoteTestProvider } from './remote.ts';

// main.ts next to this file in the sources, main.js once built.
const MAIN = fileURLToPath(new URL(`./main${extname(import.meta.url)}`, import.meta.url));

export interface ProviderProcess {
  provider: RemoteTestProvider;
  url: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** SIGTERM, then SIGKILL if the process has not exited within 5 s. */
  stop(): Promise<void>;
}

interface Announcement {
  url: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

export async function startProviderProcess(
  options: StartOptions = {},
  startTimeoutMs = 15_000,
): Promise<ProviderProcess> {
  const child = spawnTs(MAIN, ['--options', JSON.stringify(options), '--watch-stdin']);
  const stderr = new TailBuffer(4096);
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin!.on('error', () => {}); // EPIPE if the child dies first; its exit is what matters
  const exited = once(child, 'exit');

  const announcement = await new Promise<Announcement>((resolve, reject) => {
    const fail = (why: string): void => {
      child.kill('SIGKILL');
      reject(new Error(`test provider process ${why}\n${stderr.toString()}`));
    };
    const timer = setTimeout(
      () => fail(`did not start within ${startTimeoutMs} ms`),
      startTimeoutMs,
    );
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      fail(`exited before announcing its URL (code ${code}, signal ${signal})`);
    };
    child.once('exit', onExit);
    let first = true;
    // Later lines are read and dropped, so the pipe can never fill and block the child.
    onLines(child.stdout!, (line) => {
      if (!first) return;
      first = false;
      clearTimeout(timer);
      child.off('exit', onExit);
      try {
        resolve(JSON.parse(line) as Announcement);
      } catch {
        fail('announced something that is not JSON');
      }
    });
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(killer);
  };
  return { provider: new RemoteTestProvider(announcement.url), ...announcement, stop };
}
