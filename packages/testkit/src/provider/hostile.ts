// Answers of a broken or malicious token endpoint: too big, too slow, not JSON, wrong types.
// None of them redeems anything; a client must survive each without storing a thing.
import type { ServerResponse } from 'node:http';
import { sendRaw } from './http.ts';
import type { InjectedFailure } from './types.ts';

export type HostileFailure = Extract<
  InjectedFailure,
  { kind: 'huge_body' | 'slow_drip' | 'wrong_content_type' | 'wrong_types' }
>;

export function isHostile(failure: InjectedFailure | undefined): failure is HostileFailure {
  return (
    failure?.kind === 'huge_body' ||
    failure?.kind === 'slow_drip' ||
    failure?.kind === 'wrong_content_type' ||
    failure?.kind === 'wrong_types'
  );
}

const DRIP_BODY = JSON.stringify({
  access_token: 'at_drip',
  token_type: 'Bearer',
  expires_in: 3600,
});

/** `track` registers timers so that close() can stop a drip that is still going. */
export function sendHostile(
  res: ServerResponse,
  failure: HostileFailure,
  track: (timer: NodeJS.Timeout) => () => void,
): void {
  switch (failure.kind) {
    case 'huge_body': {
      const bytes = failure.bytes ?? 1024 * 1024;
      // Starts like a token response, so only the size gives it away.
      const head = '{"access_token":"at_huge","token_type":"Bearer","padding":"';
      const body = head + 'a'.repeat(Math.max(0, bytes - head.length - 2)) + '"}';
      return sendRaw(res, 200, body);
    }
    case 'wrong_content_type':
      return sendRaw(res, 200, '<html><body>Sign in to continue</body></html>', {
        'Content-Type': 'text/html; charset=utf-8',
      });
    case 'wrong_types':
      return sendRaw(
        res,
        200,
        JSON.stringify({
          access_token: 12345,
          token_type: ['Bearer'],
          expires_in: 'soon',
          refresh_token: { value: 'rt_object' },
          scope: 42,
        }),
      );
    case 'slow_drip': {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      let sent = 0;
      const timer = setInterval(() => {
        if (res.destroyed || sent >= DRIP_BODY.length) {
          untrack();
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(DRIP_BODY[sent++]);
      }, failure.intervalMs ?? 200);
      const untrack = track(timer);
      res.on('close', () => {
        untrack();
        clearInterval(timer);
      });
      return;
    }
  }
}
