import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Logs carry no headers, bodies, SQL parameters or field values by construction; these redaction
 * paths are the second net for anything that slips through (ASVS 16.2.5).
 */
export const REDACT_PATHS = [
  'req.headers',
  'headers',
  'authorization',
  'body',
  'req.body',
  'params',
  'query',
  'password',
  'token',
  '*.password',
  '*.token',
  '*.email',
  '*.phone',
  '*.name',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; routeOptions?: { url?: string }; id?: string }) => ({
        method: req.method,
        route: req.routeOptions?.url,
        id: req.id,
      }),
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
    },
  };
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return destination === undefined ? pino(loggerOptions(level)) : pino(loggerOptions(level), destination);
}
