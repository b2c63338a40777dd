import { createQueryId, type Compilable, type Kysely, type QueryResult } from 'kysely';

/** Stands for argument `i` while the query is compiled; never sent to the database. */
const placeholder = (i: number) => `\u0000tokenwarden:argument:${i}\u0000`;

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
  const run = compiledWith(db, 1, ([argument]) => build(argument!));
  return (argument) => run([argument]);
}

/**
 * `compiledOnce` for a query of `arity` arguments (a many-row insert: one per value), run with
 * their values in the order of the placeholders `build` was given. Each placeholder must be a
 * bound parameter. Runs on `db`, or on the transaction `on` when given.
 */
export function compiledWith<DB, O>(
  db: Kysely<DB>,
  arity: number,
  build: (placeholders: readonly string[]) => Compilable<O>,
): (values: readonly unknown[], on?: Kysely<DB>) => Promise<QueryResult<O>> {
  const placeholders = Array.from({ length: arity }, (_, i) => placeholder(i));
  const compiled = build(placeholders).compile();
  const argumentOf = new Map(placeholders.map((p, i) => [p, i]));
  // For each parameter of the compiled query: the argument it takes, or -1 (a constant).
  const slots = compiled.parameters.map((value) => argumentOf.get(value as string) ?? -1);
  const bound = new Set(slots);
  if (placeholders.some((p, i) => !bound.has(i) || compiled.sql.includes(p))) {
    throw new TypeError('a compiled query must take each argument as a bound parameter');
  }
  return (values, on = db) => {
    const parameters = slots.map((slot, i) =>
      slot === -1 ? compiled.parameters[i] : values[slot],
    );
    return on.executeQuery<O>({ ...compiled, parameters, queryId: createQueryId() });
  };
}
