// The Go toolchain for the Go SDK's tests: `go` from PATH when it is there, otherwise the
// toolchain the Go module proxy distributes as the module golang.org/toolchain (what `go` itself
// fetches to switch versions), unpacked once into the project's .cache/go/toolchain.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';

/** The version go.mod asks for at least; a newer go on PATH is used as it is. */
export const GO_VERSION = '1.26.8';

/** The `go` binary to run: a command name on PATH, or a path into `cacheDir`. */
export async function ensureGo(cacheDir: string): Promise<string> {
  if (spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0) return 'go';
  const goos = platform() === 'win32' ? 'windows' : platform();
  const goarch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[arch()] ?? arch();
  const version = `v0.0.1-go${GO_VERSION}.${goos}-${goarch}`;
  const unpacked = join(cacheDir, `golang.org/toolchain@${version}`);
  const binary = join(unpacked, 'bin', 'go');
  if (existsSync(binary)) return binary;

  const proxy = (process.env.GOPROXY ?? 'https://proxy.golang.org').split(/[,|]/)[0]!;
  const url = `${proxy.replace(/\/+$/, '')}/golang.org/toolchain/@v/${version}.zip`;
  const response = await fetch(url);
  if (!response.ok)
    throw new Error(`fetching the Go toolchain: HTTP ${response.status} from ${url}`);
  mkdirSync(cacheDir, { recursive: true });
  const zip = join(cacheDir, `${version}.zip`);
  writeFileSync(zip, Buffer.from(await response.arrayBuffer()));
  // Debian's unzip keeps the files' modes from the archive (bin/go, pkg/tool/* are executable).
  const unzip = spawnSync('unzip', ['-q', '-o', zip, '-d', cacheDir], { encoding: 'utf8' });
  if (unzip.status !== 0) {
    throw new Error(
      `unpacking ${zip}: ${unzip.error?.message ?? unzip.stderr} (is unzip installed?)`,
    );
  }
  return binary;
}
