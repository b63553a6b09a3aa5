import type { FastifyBaseLogger } from 'fastify';

type Bindings = Record<string, unknown>;
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Fastify's `childLoggerFactory`: a request's logger whose child (the request id bound, every
 * redaction path applied to it by pino) is made on its first use. Fastify makes one per request
 * and most requests log nothing, so the child was most of the logging cost of a request that
 * wrote no line; what a request does log is the same as before.
 */
export function lazyRequestLogger(this: unknown, logger: FastifyBaseLogger, bindings: Bindings, options: object): FastifyBaseLogger {
  let child: FastifyBaseLogger | undefined;
  const get = () => (child ??= logger.child(bindings, options));
  const at =
    (level: Level) =>
    (...args: unknown[]): void =>
      (get()[level] as (...a: unknown[]) => void)(...args);
  return {
    get level() {
      return child?.level ?? logger.level;
    },
    set level(value: string) {
      get().level = value;
    },
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    silent: () => undefined,
    child: (more: Bindings, opts?: object) => get().child(more, opts),
  } as FastifyBaseLogger;
}
