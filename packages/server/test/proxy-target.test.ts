// Where a proxied path goes: the rules of upstreamTarget, without a server.
import { describe, expect, it } from 'vitest';
import { upstreamTarget } from '../src/proxy/target.ts';

const SLACK = ['https://slack.com/api'];
const GOOGLE = ['https://www.googleapis.com', 'https://gmail.googleapis.com'];

function refusal(bases: string[], tail: string, choice?: string): string {
  try {
    upstreamTarget(bases, tail, '', choice);
  } catch (error) {
    return (error as { code: string }).code;
  }
  throw new Error(`accepted ${tail}`);
}

describe('upstreamTarget', () => {
  it('resolves under the first base URL, or the one (or the origin) the header names', () => {
    expect(upstreamTarget(SLACK, 'chat.postMessage', 'a=1', undefined)).toEqual({
      origin: 'https://slack.com',
      path: '/api/chat.postMessage?a=1',
      pathname: '/api/chat.postMessage',
    });
    expect(upstreamTarget(SLACK, 'api/chat.postMessage', '', 'https://slack.com').path).toBe(
      '/api/chat.postMessage',
    );
    expect(
      upstreamTarget(GOOGLE, 'gmail/v1/users/me/messages', '', 'https://gmail.googleapis.com/')
        .origin,
    ).toBe('https://gmail.googleapis.com');
    // An encoded slash that hides no climb is kept as sent (GitLab-style ids).
    expect(upstreamTarget(SLACK, 'projects/group%2Fproject', '', undefined).pathname).toBe(
      '/api/projects/group%2Fproject',
    );
  });

  it('refuses what would leave the base URL, and a provider without one', () => {
    expect(refusal([], 'x')).toBe('proxy_not_configured');
    // Named by origin, the path must still lie under the origin's base URL.
    expect(refusal(SLACK, 'admin/users', 'https://slack.com')).toBe('invalid_request');
    expect(refusal(SLACK, 'x', 'https://evil.example')).toBe('invalid_request');
    expect(refusal(SLACK, 'x', 'https://slack.com/api/other')).toBe('invalid_request');
    for (const tail of ['..', 'a/./b', '%2E%2e/x', 'a/..%2F..%2Fx', 'a/%5c..', 'http:x', '/x']) {
      expect([tail, refusal(SLACK, tail)]).toEqual([tail, 'invalid_request']);
    }
    expect(refusal(SLACK, '%E0%A4%A')).toBe('invalid_request');
  });
});
