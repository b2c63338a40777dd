import { BlockList, isIP } from 'node:net';
import { WebhookUrlError } from '../errors.ts';

/**
 * Where webhooks may go. By default only `https` to public addresses: an endpoint is written by
 * an admin, but its URL must not become a way into the operator's own network (cloud metadata at
 * 169.254.169.254, a database on 10.x). The address is checked again when each delivery connects
 * (`sender.ts`), so a name that resolves inside the network later is refused then.
 * `allowPrivate` (`serve --allow-private-webhooks`) lifts both rules.
 */
export interface UrlPolicy {
  allowPrivate: boolean;
}

/** Throws WebhookUrlError saying why `text` is refused; returns it normalised otherwise. */
export function checkWebhookUrl(text: string, policy: UrlPolicy): string {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (!url) throw new WebhookUrlError('url: not an absolute URL');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WebhookUrlError(`url: the scheme must be https, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new WebhookUrlError('url: no user or password in the URL; receivers verify signatures');
  }
  if (policy.allowPrivate) return url.href;
  if (url.protocol !== 'https:') {
    throw new WebhookUrlError(
      'url: the scheme must be https (plain http needs --allow-private-webhooks)',
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // A name is checked on the addresses it resolves to, at each delivery (`sender.ts`).
  if (isIP(host) && isPrivateAddress(host)) {
    throw new WebhookUrlError(
      `url: ${url.hostname} is a private, loopback or link-local address (allowed with --allow-private-webhooks)`,
    );
  }
  return url.href;
}

const PRIVATE_V4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  PRIVATE_V4.addSubnet(network, prefix, 'ipv4');
}
const PRIVATE_V6 = new BlockList();
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: an IPv4 address in disguise
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE_V6.addSubnet(network, prefix, 'ipv6');
}

/** Whether an IP address (v4 or v6, IPv4-mapped included) is private, loopback or link-local. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE_V4.check(mapped[1]!, 'ipv4');
  if (isIP(address) === 4) return PRIVATE_V4.check(address, 'ipv4');
  // Any other IPv4-mapped form (::ffff:7f00:1) is refused outright.
  if (/^::ffff:/i.test(address)) return true;
  return PRIVATE_V6.check(address, 'ipv6');
}
