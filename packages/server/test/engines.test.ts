// The Node versions we promise are ones our dependencies promise too. `engines` in every
// package.json is checked against the lockfile (each package's runtime dependencies; the whole
// tree for the repository's own tools), `npm ci` on the running Node prints no EBADENGINE, and the
// README says what the root package.json says.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const WORKSPACES = ['client', 'core', 'server', 'temporal', 'testkit'].map((p) => `packages/${p}`);

interface LockEntry {
  version?: string;
  link?: boolean;
  resolved?: string;
  optional?: boolean;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}
const lock = (
  JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  }
).packages;

function promised(dir: string): string {
  const manifest = JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as {
    engines?: { node?: string };
  };
  if (!manifest.engines?.node) throw new Error(`${dir || 'the root'} has no engines.node`);
  return manifest.engines.node;
}

/** The lockfile entry `name` resolves to from `from`, searching upwards as Node does. */
function resolveInLock(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    const entry = lock[candidate];
    if (entry) return entry.link ? entry.resolved : candidate;
    if (!dir) return undefined;
  }
}

/** What a package pulls in at run time: its dependencies, transitively (no dev, no peers). */
function runtimeClosure(start: string): Set<string> {
  const seen = new Set<string>();
  const visit = (at: string): void => {
    const entry = lock[at]!;
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = resolveInLock(at, name);
      // An optional dependency for another platform has no entry to check.
      if (found && !seen.has(found)) {
        seen.add(found);
        visit(found);
      }
    }
  };
  visit(start);
  return seen;
}

/** Dependencies that do not promise every Node version `range` promises. */
function narrower(range: string, entries: Iterable<string>): string[] {
  return [...entries].flatMap((at) => {
    const theirs = lock[at]?.engines?.node;
    return theirs && !semver.subset(range, theirs) ? [`${at} wants ${theirs}`] : [];
  });
}

describe('engines', () => {
  it.each(WORKSPACES)('%s promises no Node version a runtime dependency does not', (dir) => {
    const range = promised(dir);
    expect(semver.validRange(range), range).not.toBeNull();
    expect(narrower(range, runtimeClosure(dir))).toEqual([]);
  });

  it('the repository (build, lint, tests) promises no Node version a tool of it does not', () => {
    // Optional packages for other platforms are in the lockfile but not installed here.
    const installed = Object.keys(lock).filter(
      (at) =>
        at.startsWith('node_modules/') && !(lock[at]!.optional && !existsSync(join(REPO, at))),
    );
    expect(installed.length).toBeGreaterThan(100);
    expect(narrower(promised(''), installed)).toEqual([]);
  });

  it('the root promises no Node version a package does not', () => {
    for (const dir of WORKSPACES) {
      expect(semver.subset(promised(''), promised(dir)), dir).toBe(true);
    }
  });

  it('`npm ci` on this Node prints no EBADENGINE', async () => {
    // --dry-run installs nothing and --ignore-scripts skips the build: only npm's checks run.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(npm_|INIT_CWD$)/i.test(name)),
    );
    const output = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
      const child = spawn(
        'npm',
        ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=warn'],
        { cwd: REPO, env },
      );
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, text }));
    });
    expect(output.code, output.text).toBe(0);
    expect(output.text.split('\n').filter((line) => line.includes('EBADENGINE'))).toEqual([]);
    expect(semver.satisfies(process.version, promised(''))).toBe(true);
  });

  it("the README's quick start names the root's Node versions", () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const quickStart = readme.slice(readme.indexOf('## Quick start'));
    const line = quickStart.split('\n').find((l) => l.startsWith('Node.js '));
    expect(line).toBeDefined();
    // Each `||` branch's lowest version, as major.minor (`^20.19.0 || ^22.13.0` → 20.19, 22.13).
    for (const set of new semver.Range(promised('')).set) {
      const floor = semver.minVersion(set.map((c) => c.value).join(' '))!;
      expect(line).toContain(`${floor.major}.${floor.minor}`);
    }
  });
});
