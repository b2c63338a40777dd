import type { TestProject } from 'vitest/node';
import './provided.ts';
import { startPostgres } from './server.ts';

/**
 * vitest globalSetup: one Postgres server for the whole test run, unless
 * TOKENWARDEN_TEST_DATABASE_URL names one (then nothing is started). Tests take a fresh database
 * each with `createTestDatabase()`.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const external = process.env.TOKENWARDEN_TEST_DATABASE_URL;
  if (external) {
    project.provide('tokenwardenPostgresUrl', external);
    return;
  }
  const server = await startPostgres();
  project.provide('tokenwardenPostgresUrl', server.url);
  return () => server.close();
}
