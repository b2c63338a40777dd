// What the list, show and delete commands have in common: one API call, and its answer printed
// as it came with --json, otherwise for the person at the terminal.
import { ApiClient } from './api.ts';
import type { Args } from './args.ts';
import { printJson, printList, type Column } from './output.ts';

/** GETs a collection and prints its `key` items as a table. */
export async function showList<T>(
  args: Args,
  path: string,
  key: string,
  columns: readonly Column<T>[],
): Promise<void> {
  const body = await ApiClient.fromArgs(args).get<unknown>(path);
  printList(body, key, columns, { json: args.flag('json') });
}

/** GETs the one item of `collection` that the command's argument names, and `print`s it. */
export async function showOne<T>(
  args: Args,
  collection: string,
  print: (item: T) => void,
): Promise<void> {
  const id = args.positionals[0]!;
  const item = await ApiClient.fromArgs(args).get<T>(`${collection}/${encodeURIComponent(id)}`);
  if (args.flag('json')) printJson(item);
  else print(item);
}

/** DELETEs the one item of `collection` that the command's argument names; says it is `done`. */
export async function deleteOne(
  args: Args,
  collection: string,
  done: 'deleted' | 'revoked',
): Promise<void> {
  const id = args.positionals[0]!;
  await ApiClient.fromArgs(args).delete(`${collection}/${encodeURIComponent(id)}`);
  if (args.flag('json')) printJson({ id, [done]: true });
  else process.stdout.write(`${done} ${id}\n`);
}
