// The packages as a user gets them: built, `npm pack`ed, installed from the tarballs into a
// project outside the repository (no workspace links, dependencies from the npm cache), and run
// with plain `node`, no loader and no custom condition. Then `npm start` in the repository: the
// compiled server, with no tsx in its process tree.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RemoteTestProvider } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runToEnd, type Run } from './cli-process.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./installed/', import.meta.url));
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const PACKAGES = ['client', 'console', 'core', 'server', 'temporal', 'testkit'];
/** What each package's build emits first; the console's is a browser script, not a module. */
const entry = (name: string) => (name === 'console' ? 'dist/app.js' : 'dist/index.js');

// Installing and type-checking on a busy two-core machine: generous, the work itself is ~30 s.
const SLOW = { timeout: 300_000 };

/**
 * The environment of a user's shell: without the TOKENWARDEN_* settings of whoever runs the
 * tests, and without the npm_* variables `npm test` sets (npm_config_local_prefix would point a
 * child npm back at this repository).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(TOKENWARDEN_|npm_|INIT_CWD$)/i.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; input?: string },
): Promise<Run> {
  return runToEnd(command, args, { ...options, env: userEnv(options.env) });
}

/** `run`, failing with the command's stderr (npm's, tsc's or the CLI's: never a token). */
async function runOk(...call: Parameters<typeof run>): Promise<Run> {
  const result = await run(...call);
  if (result.code !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.slice(-4000);
    throw new Error(`${call[0]} ${call[1].join(' ')} exited with ${result.code}:\n${output}`);
  }
  return result;
}

/** A process started in the background, resolved with the first stdout or stderr line matching `ready`. */
function start(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; ready: RegExp },
): Promise<{ child: ReturnType<typeof spawn>; match: RegExpExecArray; exited: Promise<unknown> }> {
  const child = spawn(command, args, { cwd: options.cwd, env: userEnv(options.env) });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not start:\n${output.slice(-4000)}`));
    }, 120_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = options.ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${String(code)}) before it was ready:\n${output}`));
    });
  });
}

/**
 * What prebuild-install would download for better-sqlite3, made from the binary `npm ci` built
 * here: this machine reaches no download host, and compiling SQLite again takes minutes. The
 * installed package's own install script finds it through npm_config_<package>_local_prebuilds.
 */
async function writeBetterSqlitePrebuild(into: string): Promise<void> {
  const coreRequire = createRequire(join(REPO, 'packages/core/package.json'));
  const installed = dirname(coreRequire.resolve('better-sqlite3/package.json'));
  const { version } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
    version: string;
  };
  const abi = process.versions.modules;
  const name = `better-sqlite3-v${version}-node-v${abi}-${process.platform}-${process.arch}`;
  mkdirSync(into, { recursive: true });
  await runOk('tar', ['-czf', join(into, `${name}.tar.gz`), 'build/Release/better_sqlite3.node'], {
    cwd: installed,
  });
}

describe('the packages, installed from their tarballs and run with plain node', () => {
  let root: string;
  let project: string;
  let provider: Awaited<ReturnType<typeof start>> | undefined;
  let announced: { url: string; tokenUrl: string; clientId: string; clientSecret: string };
  let server: Awaited<ReturnType<typeof start>> | undefined;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tw-packaging-'));
    project = join(root, 'project');
    const tarballs = join(root, 'tarballs');
    const prebuilds = join(root, 'prebuilds');
    mkdirSync(project);
    mkdirSync(tarballs);

    // What is packed is what the sources say now (a no-op right after `npm ci` or `npm test`).
    await runOk(process.execPath, [TSC, '-b', 'tsconfig.build.json'], { cwd: REPO });
    const packed = JSON.parse(
      (
        await runOk(
          'npm',
          ['pack', '--workspaces', '--ignore-scripts', '--json', '--pack-destination', tarballs],
          { cwd: REPO },
        )
      ).stdout,
    ) as { name: string; filename: string }[];
    expect(packed.map((p) => p.name).sort()).toEqual(PACKAGES.map((p) => `@tokenwarden/${p}`));

    await writeBetterSqlitePrebuild(prebuilds);

    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'tokenwarden-user', private: true, type: 'module' }),
    );
    const typesNode = JSON.parse(
      readFileSync(join(REPO, 'node_modules/@types/node/package.json'), 'utf8'),
    ) as { version: string };
    await runOk(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        ...packed.map((p) => join(tarballs, p.filename)),
        `@types/node@${typesNode.version}`,
      ],
      { cwd: project, env: { npm_config_better_sqlite3_local_prebuilds: prebuilds } },
    );
    for (const file of readdirSync(FIXTURES)) {
      copyFileSync(join(FIXTURES, file), join(project, file));
    }

    // The test provider, from the installed testkit; its first line says where it listens.
    provider = await start(process.execPath, ['provider.mjs'], {
      cwd: project,
      ready: /^(\{.*\})$/m,
    });
    announced = JSON.parse(provider.match[1]!) as typeof announced;
  }, SLOW.timeout);

  afterAll(async () => {
    for (const running of [server, provider]) {
      if (running && running.child.exitCode === null) {
        running.child.kill('SIGTERM');
        await running.exited;
      }
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('installs real copies: no workspace link, no tsx, nothing from the repository', () => {
    const modules = join(project, 'node_modules');
    for (const name of PACKAGES) {
      const installed = join(modules, '@tokenwarden', name);
      expect(lstatSync(installed).isSymbolicLink(), name).toBe(false);
      expect(existsSync(join(installed, entry(name))), name).toBe(true);
    }
    expect(existsSync(join(modules, 'tsx'))).toBe(false);
    // Node resolves upwards from the project: nothing above it may hold packages.
    for (let dir = dirname(project); ; dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), dir).toBe(false);
      if (dir === dirname(dir)) break;
    }
    expect(project.startsWith(REPO)).toBe(false);
  });

  it(
    'serves from the installed binary; a worker gets a token through the client',
    SLOW,
    async () => {
      const remote = new RemoteTestProvider(announced.url);

      const adminKey = `tw_admin_${randomBytes(24).toString('hex')}`;
      const serverDir = join(project, 'server');
      mkdirSync(serverDir);
      server = await start(
        join(project, 'node_modules/.bin/tokenwarden'),
        ['serve', '--port', '0', '--db', join(serverDir, 'tokenwarden.sqlite')],
        {
          cwd: serverDir,
          env: { TOKENWARDEN_LOG_LEVEL: 'warn', TOKENWARDEN_ADMIN_KEY: adminKey },
          ready: /listening on (http:\/\/\S+)/,
        },
      );
      const url = server.match[1]!;
      const cli = join(project, 'node_modules/.bin/tokenwarden');
      const admin = { TOKENWARDEN_URL: url, TOKENWARDEN_ADMIN_KEY: adminKey };
      // The console comes with it: its page from the installed @tokenwarden/console, its script too.
      const consolePage = await fetch(`${url}/console`);
      expect(consolePage.status).toBe(200);
      const script = /src="([^"]+app\.js[^"]*)"/.exec(await consolePage.text())![1]!;
      expect((await fetch(`${url}${script}`)).status).toBe(200);

      await runOk(
        cli,
        [
          'providers',
          'put',
          'acme',
          '--token-url',
          announced.tokenUrl,
          '--client-id',
          announced.clientId,
          '--client-secret-file',
          '-',
        ],
        { cwd: serverDir, env: admin, input: `${announced.clientSecret}\n` },
      );
      const created = await runOk(
        cli,
        ['clients', 'create', '--name', 'worker', '--grant', 'acme:*:token.read', '--json'],
        { cwd: serverDir, env: admin },
      );
      const client = JSON.parse(created.stdout) as { api_key: string };
      // Expired at once: the worker's token has to come from a refresh at the provider.
      const grant = await remote.issueGrant();
      const imported = await runOk(
        cli,
        [
          'connections',
          'import',
          '--provider',
          'acme',
          '--owner',
          'user-42',
          '--file',
          '-',
          '--expires-in',
          '0',
        ],
        {
          cwd: serverDir,
          env: admin,
          input: JSON.stringify({
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
          }),
        },
      );
      const connectionId = imported.stdout.trim();
      expect(connectionId).toMatch(/^conn_/);

      const worker = await runOk(process.execPath, ['worker.mjs'], {
        cwd: project,
        env: {
          TOKENWARDEN_URL: url,
          TOKENWARDEN_API_KEY: client.api_key,
          CONNECTION_ID: connectionId,
        },
      });
      const report = JSON.parse(worker.stdout) as Record<string, unknown>;
      expect(report).toMatchObject({
        version: 2,
        gotToken: true,
        helpers: 'function',
        codecRoundTrip: '{}',
        workflow: 'function',
      });
      for (const resolved of report.resolved as string[]) {
        expect(resolved.startsWith(pathToFileURL(join(project, 'node_modules')).href)).toBe(true);
      }
      expect((await remote.stats()).redemptions).toBe(1);
    },
  );

  it('runs @tokenwarden/core in library mode', SLOW, async () => {
    const libraryDir = join(project, 'library');
    mkdirSync(libraryDir);
    const result = await runOk(process.execPath, ['../library.mjs'], {
      cwd: libraryDir,
      env: {
        PROVIDER_URL: announced.url,
        PROVIDER_CLIENT_ID: announced.clientId,
        PROVIDER_CLIENT_SECRET: announced.clientSecret,
      },
    });
    expect(JSON.parse(result.stdout)).toMatchObject({ version: 2, refreshed: true });
    expect(existsSync(join(libraryDir, 'tokenwarden.sqlite'))).toBe(true);
  });

  it('type-checks a TypeScript file against the installed typings', SLOW, async () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: ['node'],
          // Our declaration files are checked too, not only what check.ts uses of them.
          skipLibCheck: false,
        },
        files: ['check.ts', 'temporal-typings.d.ts'],
      }),
    );
    // Temporal's own declarations use a type from each of two modules that ship none (found with
    // skipLibCheck off); declaring them is what a Temporal user with that setting does too.
    writeFileSync(
      join(project, 'temporal-typings.d.ts'),
      [
        "declare module 'ms' { export type StringValue = string; }",
        "declare module 'source-map' { export type RawSourceMap = object; }",
        '',
      ].join('\n'),
    );
    await runOk(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project });
  });
});

describe('npm start', () => {
  it('serves the API from the compiled server, with no tsx in the process tree', SLOW, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-npm-start-'));
    const started = await start('npm', ['start'], {
      cwd: REPO,
      env: {
        TOKENWARDEN_PORT: '0',
        TOKENWARDEN_DB: join(dir, 'tokenwarden.sqlite'),
        TOKENWARDEN_KEY_FILE: join(dir, 'tokenwarden.keys'),
        TOKENWARDEN_ADMIN_KEY: `tw_admin_${randomBytes(24).toString('hex')}`,
        TOKENWARDEN_LOG_LEVEL: 'warn',
      },
      ready: /listening on (http:\/\/\S+)/,
    });
    const tree = await processTree(started.child.pid!);
    try {
      expect((await fetch(`${started.match[1]!}/healthz`)).status).toBe(200);
      expect(serveProcesses(tree), JSON.stringify(tree)).toHaveLength(1);
      expect(tree.filter((p) => /tsx/.test(p.args))).toEqual([]);
    } finally {
      // The serve process itself: a signal to npm would stop at the shell between them.
      for (const { pid } of serveProcesses(tree)) process.kill(pid, 'SIGTERM');
      await started.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The node process running `tokenwarden serve` (not the shell npm runs it through). */
function serveProcesses(tree: { pid: number; args: string }[]): { pid: number; args: string }[] {
  return tree.filter((p) => /^\S*node .*tokenwarden serve/.test(p.args));
}

/** `pid` and every process under it, with their command lines. */
async function processTree(pid: number): Promise<{ pid: number; args: string }[]> {
  const { stdout } = await runOk('ps', ['-eo', 'pid=,ppid=,args='], { cwd: REPO });
  const all = stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const tree = all.filter((p) => p.pid === pid);
  for (let i = 0; i < tree.length; i++) {
    tree.push(...all.filter((p) => p.ppid === tree[i]!.pid));
  }
  return tree.map(({ pid, args }) => ({ pid, args }));
}
