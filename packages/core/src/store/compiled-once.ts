import { createQueryId, type Compilable, type Kysely, type QueryResult } from 'kysely';

/** Stands for the argument while the query is compiled; never sent to the database. */
const ARGUMENT = '\u0000tokenwarden:argument\u0000';

/**
 * A query built and compiled once, then run with a new argument each time: for the reads on
 * every token hand-out, where building and compiling the query with Kysely costs more than the
 * database takes to answer it.
 *
 * `build` is called once, with a placeholder standing for the argument, and must use the argument
 * as a value of the query (a bound parameter; checked here). The query text is written once, as
 * for any other query. Each run goes through `db.executeQuery`, so the instance's plugins still
 * map the result (`CamelCasePlugin`: snake_case columns to camelCase keys), and gets its own
 * query id, as plugins that keep per-query state expect.
 *
 * ```ts
 * const byId = compiledOnce(db, (id) => db.selectFrom('credentials').selectAll().where('id', '=', id));
 * const { rows } = await byId('conn_1');
 * ```
 */
export function compiledOnce<DB, O>(
  db: Kysely<DB>,
  build: (argument: string) => Compilable<O>,
): (argument: string) => Promise<QueryResult<O>> {
  const compiled = build(ARGUMENT).compile();
  const slots = compiled.parameters.flatMap((value, i) => (value === ARGUMENT ? [i] : []));
  if (slots.length === 0 || compiled.sql.includes(ARGUMENT)) {
    throw new TypeError('compiledOnce: the query must take its argument as a bound parameter');
  }
  return (argument) => {
    const parameters = [...compiled.parameters];
    for (const slot of slots) parameters[slot] = argument;
    return db.executeQuery<O>({ ...compiled, parameters, queryId: createQueryId() });
  };
}
