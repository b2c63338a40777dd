// Progress on stderr: a redrawn bar on a terminal, a plain line at most once a second otherwise
// (logs and CI keep a readable record instead of carriage returns).

export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #lastLine = 0;
  #drawn = false;

  constructor(
    readonly label: string,
    readonly total: number,
    stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.#stream = stream;
    this.#tty = Boolean(stream.isTTY);
  }

  update(done: number, extra = ''): void {
    if (this.#tty) {
      this.#stream.write(`\r${this.#render(done, extra)}\x1b[K`);
      this.#drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.#lastLine >= 1000) {
      this.#lastLine = now;
      this.#stream.write(`${this.#summary(done, extra)}\n`);
    }
  }

  /** The final state, always printed, ending the bar's line. */
  finish(done: number, extra = ''): void {
    if (this.#tty) {
      this.#stream.write(`\r${this.#render(done, extra)}\x1b[K\n`);
    } else {
      this.#stream.write(`${this.#summary(done, extra)}\n`);
    }
    this.#drawn = false;
  }

  /** Ends a half-drawn bar so that an error line starts on a line of its own. */
  abort(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }

  #render(done: number, extra: string): string {
    const width = 30;
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const filled = Math.round(ratio * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    return `${this.label} [${bar}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${done}/${this.total}${extra ? ` ${extra}` : ''}`;
  }

  #summary(done: number, extra: string): string {
    const percent = this.total > 0 ? Math.floor(Math.min(1, done / this.total) * 100) : 100;
    return `${this.label}: ${done}/${this.total} (${percent}%)${extra ? ` ${extra}` : ''}`;
  }
}
