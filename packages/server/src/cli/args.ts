import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

export type OptionSpec = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean }
>;

/** Options that take a value (`--name <value>`), by name: most of every command's options. */
export function valued(...names: string[]): OptionSpec {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }]));
}

/** Options that are on when given (`--name`), by name. */
export function switches(...names: string[]): OptionSpec {
  return Object.fromEntries(names.map((name) => [name, { type: 'boolean' }]));
}

/** A command or a group of subcommands, as `main.ts` dispatches them. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[]): Promise<void>;
}

/** What a command declares: its options, and `run`, which is given them parsed. */
export interface CommandSpec {
  name: string;
  summary: string;
  help: string;
  options: OptionSpec;
  positionals?: Positionals;
  run(args: Args): Promise<void>;
}

/** A command that parses its arguments before `run`; `--help` prints the help and runs nothing. */
export function defineCommand(spec: CommandSpec): Command {
  const { name, summary, help } = spec;
  return {
    name,
    summary,
    help,
    async run(argv) {
      const args = parseCommand(argv, spec, spec.options, spec.positionals);
      if (args) await spec.run(args);
    },
  };
}

/** How many arguments a command takes besides its options, and what to call them. */
export interface Positionals {
  min?: number;
  max?: number;
  names?: string;
}

/** One argument, required: `<connection id>`, `<provider name>`, ... */
export function exactlyOne(names: string): Positionals {
  return { min: 1, max: 1, names };
}

/**
 * Parses one command's arguments with node:util parseArgs (strict), turning its long error
 * messages into one usage line. Returns undefined after printing the help for `--help`/`-h`.
 */
export function parseCommand(
  argv: string[],
  command: { name: string; help: string },
  options: OptionSpec,
  positionals: Positionals = {},
): Args | undefined {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(describeParseError(error), command.name);
  }
  if (parsed.values.help) {
    process.stdout.write(`${command.help.trimEnd()}\n`);
    return undefined;
  }
  const { min = 0, max = 0 } = positionals;
  const count = parsed.positionals.length;
  if (count < min) {
    throw new UsageError(`missing ${positionals.names ?? 'argument'}`, command.name);
  }
  if (count > max) {
    throw new UsageError(`unexpected argument '${parsed.positionals[max]}'`, command.name);
  }
  return new Args(command.name, parsed.values as Record<string, unknown>, parsed.positionals);
}

function describeParseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  // Node quotes the option as '--port <value>' in some messages: keep the name.
  const quoted = /'([^' ]+)[^']*'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted) return `unknown option ${quoted}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted) {
    return message.includes('argument missing')
      ? `option ${quoted} needs a value`
      : `option ${quoted} takes no value`;
  }
  return message.split('. ')[0] ?? message;
}

/** Typed access to parsed values, with the checks every command needs. */
export class Args {
  constructor(
    readonly command: string,
    readonly values: Record<string, unknown>,
    readonly positionals: string[],
  ) {}

  string(name: string): string | undefined {
    const value = this.values[name];
    return typeof value === 'string' ? value : undefined;
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') {
      throw new UsageError(`missing --${name}`, this.command);
    }
    return value;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  list(name: string): string[] {
    const value = this.values[name];
    return Array.isArray(value) ? (value as string[]) : [];
  }

  /** An integer option within [min, max], or `fallback` when absent. */
  int(name: string, range: { min: number; max: number }, fallback?: string): number | undefined {
    const raw = this.string(name) ?? fallback;
    if (raw === undefined || raw === '') return undefined;
    return parseInteger(raw, `--${name}`, range, this.command);
  }
}

export function parseInteger(
  raw: string,
  label: string,
  { min, max }: { min: number; max: number },
  command?: string,
): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${label} must be an integer from ${min} to ${max}, got '${raw}'`,
      command,
    );
  }
  return value;
}
