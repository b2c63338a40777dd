// Human-readable tables by default, JSON with --json. Data goes to stdout; notes for the person
// at the terminal (warnings, progress, "shown once") go to stderr so pipes only see data.

import { itemsOf } from './input.ts';

export type Column<T> = [header: string, cell: (row: T) => unknown];

export function printTable<T>(rows: readonly T[], columns: readonly Column<T>[]): void {
  if (rows.length === 0) {
    note('(none)');
    return;
  }
  const cells = rows.map((row) => columns.map(([, cell]) => formatCell(cell(row))));
  const headers = columns.map(([header]) => header);
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((line) => line[i]!.length)),
  );
  const render = (line: string[]) =>
    line
      .map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[headers, ...cells].map(render).join('\n')}\n`);
}

/**
 * A list answer: the body as it came with --json, else its `key` items as a table and, when
 * there are more pages, the `more` note under it.
 */
export function printList<T>(
  body: unknown,
  key: string,
  columns: readonly Column<T>[],
  { json, more }: { json: boolean; more?: string | false | null },
): void {
  if (json) {
    printJson(body);
    return;
  }
  printTable(itemsOf<T>(body, key), columns);
  if (more) note(more);
}

/** `key: value` lines for one object, keys aligned. */
export function printFields(fields: ReadonlyArray<[label: string, value: unknown]>): void {
  const width = Math.max(...fields.map(([label]) => label.length));
  const lines = fields.map(
    ([label, value]) => `${`${label}:`.padEnd(width + 1)}  ${formatCell(value)}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A line for the person at the terminal, never part of the data. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function formatCell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string') return value.replace(/[\r\n\t]+/g, ' ');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** ISO time from epoch ms, epoch seconds or an ISO string, as the API may answer either. */
export function formatTime(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'number') {
    // Epoch seconds are below 1e11 until the year 5138.
    const ms = value < 1e11 ? value * 1000 : value;
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  if (typeof value === 'string') {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? value : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return formatCell(value);
}
