// Command-line options of the provider child process (main.ts). Kept apart from main.ts so the
// parsing can be tested without starting a process.
import { validateOptionsPatch, type TestProviderOptions } from './types.ts';

export interface ProviderArgs extends TestProviderOptions {
  port?: number;
  host?: string;
  /** Exit when stdin ends, i.e. when the parent that holds the other end of the pipe is gone. */
  watchStdin?: boolean;
}

type Flag = { key: keyof ProviderArgs; kind: 'number' | 'boolean' | 'string' };

const FLAGS: Record<string, Flag> = {
  port: { key: 'port', kind: 'number' },
  host: { key: 'host', kind: 'string' },
  'latency-ms': { key: 'latencyMs', kind: 'number' },
  rotation: { key: 'rotation', kind: 'boolean' },
  'grace-ms': { key: 'reuseGraceMs', kind: 'number' },
  'reuse-detection': { key: 'reuseDetection', kind: 'boolean' },
  'access-ttl': { key: 'accessTokenTtlSeconds', kind: 'number' },
  'refresh-ttl': { key: 'refreshTokenTtlSeconds', kind: 'number' },
  'client-id': { key: 'clientId', kind: 'string' },
  'client-secret': { key: 'clientSecret', kind: 'string' },
  'watch-stdin': { key: 'watchStdin', kind: 'boolean' },
};

function convert(name: string, kind: Flag['kind'], value: string): string | number | boolean {
  if (kind === 'string') return value;
  if (kind === 'boolean') {
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw new TypeError(`--${name} expects true or false`);
  }
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw new TypeError(`--${name} expects a number`);
  }
  return number;
}

/**
 * Accepts `--name value`, `--name=value`, a bare boolean `--name` (true), and
 * `--options '<json>'` with TestProviderOptions (plus port/host); flags override the JSON.
 */
export function parseProviderArgs(argv: readonly string[]): ProviderArgs {
  let json: Record<string, unknown> = {};
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const match = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!match?.[1]) throw new TypeError(`unexpected argument ${arg}`);
    const name = match[1];
    const flag = FLAGS[name];
    if (name !== 'options' && !flag) throw new TypeError(`unknown option --${name}`);
    let value = match[2];
    const next = argv[i + 1];
    if (value === undefined && next !== undefined && !next.startsWith('--')) {
      value = next;
      i++;
    }
    if (value === undefined) {
      if (flag?.kind !== 'boolean') throw new TypeError(`--${name} needs a value`);
      value = 'true';
    }
    if (name === 'options') {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new TypeError('--options expects a JSON object');
      }
      json = parsed as Record<string, unknown>;
    } else if (flag) {
      flags[flag.key] = convert(name, flag.kind, value);
    }
  }
  const { port, host, watchStdin, ...options } = { ...json, ...flags };
  if (port !== undefined && (!Number.isInteger(port) || (port as number) < 0)) {
    throw new TypeError('port must be a non-negative integer');
  }
  if (host !== undefined && typeof host !== 'string') throw new TypeError('host must be a string');
  return {
    ...validateOptionsPatch(options),
    ...(port === undefined ? {} : { port: port as number }),
    ...(host === undefined ? {} : { host }),
    ...(watchStdin === undefined ? {} : { watchStdin: watchStdin === true }),
  };
}
