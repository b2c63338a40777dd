import type { TestProject } from 'vitest/node';
import './provided.ts';
import { ensureTemporalCli } from './cli.ts';
import { startTemporalDevServer } from './server.ts';

/**
 * vitest globalSetup: one Temporal dev server for the whole test run, unless TEMPORAL_ADDRESS
 * names one (then nothing is started). Tests take a fresh namespace each with
 * `createTemporalNamespace()`.
 *
 * When the CLI cannot be fetched or the server does not start, the run goes on: every test that
 * asks for Temporal (`testTemporalAddress()`) fails with the reason, and the others are unaffected.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const external = process.env.TEMPORAL_ADDRESS;
  if (external) {
    provide(project, { address: external, cli: '', unavailable: '' });
    return;
  }
  try {
    const cli = await ensureTemporalCli({ log: (line) => console.error(line) });
    const server = await startTemporalDevServer({ cli });
    provide(project, { address: server.address, cli, unavailable: '' });
    return () => server.close();
  } catch (error) {
    provide(project, { address: '', cli: '', unavailable: (error as Error).message });
  }
}

function provide(
  project: TestProject,
  { address, cli, unavailable }: { address: string; cli: string; unavailable: string },
): void {
  project.provide('temporalAddress', address);
  project.provide('temporalCli', cli);
  project.provide('temporalUnavailable', unavailable);
}
