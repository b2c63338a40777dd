/**
 * The lines of a server's log that say something escaped the API's error handling: a fatal
 * line, an uncaught exception or unhandled rejection, a stack trace on stderr, or a request
 * that failed with a fault (`request failed` with anything but a retryable unavailability,
 * which is a documented 503: the provider or the store did not answer).
 */
export function uncaughtErrors(log: string): string[] {
  return log
    .split('\n')
    .filter((line) => line.trim() !== '' && isUncaught(line))
    .map((line) => line.slice(0, 500));
}

function isUncaught(line: string): boolean {
  let entry: { level?: number; msg?: string; err?: { type?: string } };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    // Not a log line: what Node prints when a process dies.
    return (
      /[a-z]Error\b|strict mode|^\s+at .+:\d+:\d+\)?$/.test(line) ||
      /uncaught|unhandled/i.test(line)
    );
  }
  if ((entry.level ?? 0) >= 60 || /uncaught|unhandled/i.test(entry.msg ?? '')) return true;
  return entry.msg === 'request failed' && !/UnavailableError$/.test(entry.err?.type ?? '');
}
