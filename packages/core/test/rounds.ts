import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fixtureEnv, spawnTs, type BrokerFixture } from '@tokenwarden/testkit';

export type RoundAnswer = { token?: string; version?: number; error?: string }[];

/**
 * A long-lived worker process for expiry rounds (`workers/rounds-worker.ts`): `round(n)` makes
 * its callers ask for a token and resolves with what each got.
 */
export class RoundsWorker {
  readonly #child;
  readonly #lines;

  private constructor(fixture: BrokerFixture, connectionId: string, callers: number) {
    this.#child = spawnTs(
      join(import.meta.dirname, 'workers', 'rounds-worker.ts'),
      [connectionId, String(callers)],
      fixtureEnv(fixture),
    );
    this.#lines = createInterface({ input: this.#child.stdout! })[Symbol.asyncIterator]();
  }

  static async start(fixture: BrokerFixture, connectionId: string, callers: number) {
    const worker = new RoundsWorker(fixture, connectionId, callers);
    const ready = await worker.#next();
    if (ready !== 'READY') throw new Error(`rounds worker did not start: ${ready}`);
    return worker;
  }

  send(round: number): void {
    this.#child.stdin!.write(`ROUND ${round}\n`);
  }

  async answer(): Promise<RoundAnswer> {
    const line = await this.#next();
    return (JSON.parse(line.replace('ROUND_DONE ', '')) as { answer: RoundAnswer }).answer;
  }

  /** Like a machine losing power: no chance to release a lease or finish a write. */
  async kill(): Promise<void> {
    const exited = once(this.#child, 'close');
    this.#child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const exited = once(this.#child, 'close');
    this.#child.stdin!.end('EXIT\n');
    await exited;
  }

  async #next(): Promise<string> {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error('rounds worker exited');
    return value as string;
  }
}
