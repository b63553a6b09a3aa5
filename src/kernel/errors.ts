/**
 * One error type for everything the service refuses on purpose. `code` is stable (clients and the
 * acceptance checks code against it), `status` is the HTTP status, and `expose` says whether the
 * message may be shown to the caller. Messages never carry personal data: they name fields,
 * variables and ids, never values. (Fastify errors catalogue, better-auth error codes)
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  /** Extra, non-personal details for the response body (field names, limits). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { expose?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.details = options.details;
  }
}

/** A catalogue entry: every code the service can answer with, listed in docs/errors.md. */
export interface ErrorSpec {
  readonly code: string;
  readonly status: number;
  readonly description: string;
}

/** Builds a typed catalogue so that modules declare their codes once and throw them by name. */
export function defineErrors<const T extends Record<string, { status: number; description: string }>>(
  specs: T,
): { [K in keyof T]: ErrorSpec & { code: K & string } } {
  const out: Record<string, ErrorSpec> = {};
  for (const [code, spec] of Object.entries(specs)) out[code] = { code, ...spec };
  return out as { [K in keyof T]: ErrorSpec & { code: K & string } };
}

/** Throws the catalogue entry `spec` with a message that must not contain personal data. */
export function fail(spec: ErrorSpec, message: string, details?: Record<string, unknown>): never {
  throw new AppError(spec.code, spec.status, message, details === undefined ? {} : { details });
}

const registry = new Map<string, ErrorSpec>();

/** Modules register their catalogues so that the docs test can compare them with docs/errors.md. */
export function registerErrors(specs: Record<string, ErrorSpec>): void {
  for (const spec of Object.values(specs)) registry.set(spec.code, spec);
}

export function allErrors(): ErrorSpec[] {
  return [...registry.values()].sort((a, b) => a.code.localeCompare(b.code));
}
