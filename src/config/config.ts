import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { Secret } from '../kernel/secret.ts';

/**
 * Every setting the service reads, in one schema, parsed once and frozen. Nothing else in the code
 * reads process.env. A bad value stops start-up with a message naming the variable.
 * The README's configuration table lists the same variables; a test keeps them in step.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const positiveInt = z.coerce.number().int().positive();

export const CONFIG_VARIABLES = {
  CUSTOS_HOST: { schema: z.string().min(1).default('127.0.0.1'), doc: 'Address to listen on.' },
  CUSTOS_PORT: { schema: z.coerce.number().int().min(0).max(65535).default(8443), doc: 'Port to listen on.' },
  CUSTOS_DATA_DIR: {
    schema: z.string().min(1).default('./.custos'),
    doc: 'Folder for the SQLite database, the local keyring and the generated TLS certificate; created on first start.',
  },
  DATABASE_URL: {
    schema: z
      .string()
      .regex(/^(postgres|postgresql|sqlite):/, 'must start with postgres://, postgresql:// or sqlite:')
      .optional(),
    doc: 'postgres://… for PostgreSQL; sqlite:PATH for another SQLite file. Unset: SQLite at DATA_DIR/custos.db.',
  },
  DATABASE_SCHEMA: {
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier').optional(),
    doc: 'PostgreSQL schema to use (created if missing). Unset: the connection default (public).',
  },
  DATABASE_POOL_SIZE: { schema: positiveInt.max(200).default(10), doc: 'PostgreSQL connections per process.' },
  CUSTOS_ROOT_KEY: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9+/_-]{43}=?$/, 'must be 32 bytes in base64 (openssl rand -base64 32)')
      .transform((v) => new Secret(Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64')))
      .optional(),
    doc: 'Root key (32 bytes, base64). Unset: a local keyring file in DATA_DIR, created on first start with mode 0600.',
  },
  CUSTOS_TLS_CERT: { schema: z.string().min(1).optional(), doc: 'PEM certificate file. Unset: a self-signed one in DATA_DIR.' },
  CUSTOS_TLS_KEY: { schema: z.string().min(1).optional(), doc: 'PEM private key file for CUSTOS_TLS_CERT.' },
  CUSTOS_PLAIN_HTTP: {
    schema: bool.default(false),
    doc: 'Serve plain HTTP. Only allowed with CUSTOS_TRUST_PROXY: for a trusted TLS-terminating proxy.',
  },
  CUSTOS_TRUST_PROXY: {
    schema: z.string().min(1).optional(),
    doc: 'Addresses or CIDRs of the TLS-terminating proxy whose X-Forwarded-* headers are believed.',
  },
  CUSTOS_INVENTORY: {
    schema: z.string().min(1).optional(),
    doc: "The shop's data inventory (YAML) that extends or replaces the default one.",
  },
  CUSTOS_PHONE_DEFAULT_COUNTRY: {
    schema: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as DE').optional(),
    doc: 'Country assumed for phone numbers written without +country code. Unset: such numbers are refused.',
  },
  CUSTOS_BODY_LIMIT: { schema: positiveInt.default(262_144), doc: 'Largest request body in bytes.' },
  CUSTOS_RATE_LIMIT: { schema: positiveInt.default(6000), doc: 'Requests per minute per API key (per client address without a key).' },
  REDIS_URL: {
    schema: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
    doc: 'Redis for rate limits shared by several server processes. Unset: in-process counters.',
  },
  CUSTOS_AUDIT_FLUSH_MS: {
    schema: z.coerce.number().int().min(0).max(1000).default(2),
    doc: 'Longest wait, in ms, to group audit entries of concurrent reads into one commit.',
  },
  CUSTOS_LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    doc: 'Log level.',
  },
} as const;

type Vars = typeof CONFIG_VARIABLES;
type Parsed = { [K in keyof Vars]: z.output<Vars[K]['schema']> };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly database:
    | { readonly kind: 'sqlite'; readonly file: string }
    | { readonly kind: 'postgres'; readonly url: Secret<string>; readonly schema: string | undefined; readonly poolSize: number };
  readonly rootKey: Secret<Buffer> | undefined;
  readonly tls:
    | { readonly mode: 'self-signed' }
    | { readonly mode: 'files'; readonly cert: string; readonly key: string }
    | { readonly mode: 'off'; readonly trustProxy: string };
  readonly trustProxy: string | undefined;
  readonly inventoryFile: string | undefined;
  readonly phoneDefaultCountry: string | undefined;
  readonly bodyLimit: number;
  readonly rateLimitPerMinute: number;
  readonly redisUrl: Secret<string> | undefined;
  readonly auditFlushMs: number;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws ConfigError naming each bad variable (never its value). */
export function loadConfig(env: Record<string, string | undefined> = process.env, cwd: string = process.cwd()): Config {
  const parsed: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
    const raw = env[name];
    const result = (spec.schema as z.ZodType).safeParse(raw === '' ? undefined : raw);
    if (result.success) parsed[name] = result.data;
    else problems.push(`${name}: ${result.error.issues[0]?.message ?? 'invalid value'}`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  const p = parsed as Parsed;

  const dataDir = isAbsolute(p.CUSTOS_DATA_DIR) ? p.CUSTOS_DATA_DIR : resolve(cwd, p.CUSTOS_DATA_DIR);

  let database: Config['database'];
  const url = p.DATABASE_URL;
  if (url === undefined) database = { kind: 'sqlite', file: resolve(dataDir, 'custos.db') };
  else if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (file === '') throw new ConfigError('invalid configuration:\n  DATABASE_URL: sqlite: needs a file path');
    database = { kind: 'sqlite', file: isAbsolute(file) ? file : resolve(cwd, file) };
  } else database = { kind: 'postgres', url: new Secret(url), schema: p.DATABASE_SCHEMA, poolSize: p.DATABASE_POOL_SIZE };

  let tls: Config['tls'];
  if (p.CUSTOS_PLAIN_HTTP) {
    if (p.CUSTOS_TRUST_PROXY === undefined)
      throw new ConfigError(
        'invalid configuration:\n  CUSTOS_PLAIN_HTTP: plain HTTP is only allowed behind a trusted TLS-terminating proxy; set CUSTOS_TRUST_PROXY',
      );
    tls = { mode: 'off', trustProxy: p.CUSTOS_TRUST_PROXY };
  } else if (p.CUSTOS_TLS_CERT !== undefined || p.CUSTOS_TLS_KEY !== undefined) {
    if (p.CUSTOS_TLS_CERT === undefined || p.CUSTOS_TLS_KEY === undefined)
      throw new ConfigError(
        `invalid configuration:\n  ${p.CUSTOS_TLS_CERT === undefined ? 'CUSTOS_TLS_CERT' : 'CUSTOS_TLS_KEY'}: CUSTOS_TLS_CERT and CUSTOS_TLS_KEY go together`,
      );
    tls = { mode: 'files', cert: resolve(cwd, p.CUSTOS_TLS_CERT), key: resolve(cwd, p.CUSTOS_TLS_KEY) };
  } else tls = { mode: 'self-signed' };

  return Object.freeze({
    host: p.CUSTOS_HOST,
    port: p.CUSTOS_PORT,
    dataDir,
    database: Object.freeze(database),
    rootKey: p.CUSTOS_ROOT_KEY,
    tls: Object.freeze(tls),
    trustProxy: p.CUSTOS_TRUST_PROXY,
    inventoryFile: p.CUSTOS_INVENTORY === undefined ? undefined : resolve(cwd, p.CUSTOS_INVENTORY),
    phoneDefaultCountry: p.CUSTOS_PHONE_DEFAULT_COUNTRY,
    bodyLimit: p.CUSTOS_BODY_LIMIT,
    rateLimitPerMinute: p.CUSTOS_RATE_LIMIT,
    redisUrl: p.REDIS_URL === undefined ? undefined : new Secret(p.REDIS_URL),
    auditFlushMs: p.CUSTOS_AUDIT_FLUSH_MS,
    logLevel: p.CUSTOS_LOG_LEVEL,
  });
}
