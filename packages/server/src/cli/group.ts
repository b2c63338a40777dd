import type { Command } from './args.ts';
import { UsageError } from './errors.ts';

/** A command made of subcommands (`clients create`, `clients list`, ...). */
export function group(name: string, summary: string, subcommands: readonly Command[]): Command {
  const short = (c: Command) => c.name.slice(name.length + 1);
  const width = Math.max(10, ...subcommands.map((c) => short(c).length));
  const help = `Usage: tokenwarden ${name} <subcommand> [options]

${summary[0]!.toUpperCase()}${summary.slice(1)}.

Subcommands:
${subcommands.map((c) => `  ${short(c).padEnd(width)} ${c.summary}`).join('\n')}

Run 'tokenwarden ${name} <subcommand> --help' for its options.`;
  return {
    name,
    summary,
    help,
    async run(argv) {
      const [sub, ...rest] = argv;
      if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
        process.stdout.write(`${help}\n`);
        if (sub === undefined) process.exitCode = 2;
        return;
      }
      const command = subcommands.find((c) => short(c) === sub);
      if (command === undefined) {
        throw new UsageError(`unknown subcommand '${sub}'`, name);
      }
      await command.run(rest);
    },
  };
}
