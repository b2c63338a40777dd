/** A URL fit for a message or a log line: its password masked, its query dropped. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    parsed.search = '';
    return parsed.href.replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}
