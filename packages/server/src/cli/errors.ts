/**
 * An expected failure: printed as one `error: ...` line, no stack, exit status 1. Messages never
 * carry a token, a key or a client secret.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command line itself was wrong (exit status 2, like most Unix tools). */
export class UsageError extends CliError {
  constructor(message: string, command?: string) {
    super(command ? `${message} (see 'tokenwarden ${command} --help')` : message, 2);
    this.name = 'UsageError';
  }
}

/** Collapses a multi-line message (core's key ring help spans several) into the one error line. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
