import type { FastifyBaseLogger } from 'fastify';

type ChildOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type Level = (typeof LEVELS)[number];
type LogArgs = Parameters<FastifyBaseLogger['info']>;

/**
 * Fastify's `childLoggerFactory`: each request's logger (`request.log`, carrying its `reqId`)
 * is made only when the request writes a line at an enabled level. Pino builds a child (its
 * bindings serialized, the redaction set up) in a few microseconds; with request logging off,
 * most requests never write a line, so they never pay for it. The lines written are the same.
 */
export const lazyChildLoggerFactory = (
  logger: FastifyBaseLogger,
  bindings: Record<string, unknown>,
  options: ChildOptions,
): FastifyBaseLogger =>
  // A route's own level or serializers change what is enabled: then the child is made at once.
  options.level !== undefined || options.serializers !== undefined
    ? logger.child(bindings, options)
    : (new LazyChildLogger(logger, bindings) as unknown as FastifyBaseLogger);

class LazyChildLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Record<string, unknown>;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    const target = (this.#child ?? this.#parent) as Partial<{
      isLevelEnabled: (level: string) => boolean;
    }>;
    return target.isLevelEnabled?.(level) ?? true;
  }

  // The level methods, `fatal(...)` to `trace(...)`: each writes through #write.
  static {
    for (const level of LEVELS) {
      Object.defineProperty(LazyChildLogger.prototype, level, {
        value(this: LazyChildLogger, ...args: LogArgs): void {
          this.#write(level, args);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  silent(): void {}

  child(bindings: Record<string, unknown>, options?: object): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #write(level: Level, args: LogArgs): void {
    if (this.#child === undefined && !this.isLevelEnabled(level)) return;
    const child = this.#real();
    (child[level] as (...args: LogArgs) => void).apply(child, args);
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings));
  }
}
