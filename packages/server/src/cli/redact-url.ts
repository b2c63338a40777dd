/** A URL fit for a message or a log line: its password masked, its query dropped. */
export function redactUrl(url: string): string {
  // libpq's host list (postgres://u:pw@h1:5432,h2:5432/db) is no URL to `new URL`: redact the
  // URL of its first host, then show the whole list in its place.
  const list = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^/?#]*,[^/?#]*)/i.exec(url)?.[1];
  if (list !== undefined) {
    const first = list.split(',')[0]!;
    const shown = redactUrl(url.replace(list, first));
    return shown.replace(`@${first}`, `@${list}`).replace(`//${first}`, `//${list}`);
  }
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    parsed.search = '';
    return parsed.href.replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}
