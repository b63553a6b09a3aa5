import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { webhookUrlProblem } from '../http/webhook-delivery.ts';
import { parseWebhookSecret } from '../http/webhooks.ts';
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

const rootKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9+/_-]{43}=?$/, 'must be 32 bytes in base64 (openssl rand -base64 32)')
  .transform((v) => new Secret(Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64')));

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
    schema: rootKeySchema.optional(),
    doc: 'Root key (32 bytes, base64). Unset (and no CUSTOS_ROOT_KEY_FILE or CUSTOS_PKCS11_MODULE): a local keyring file in DATA_DIR, created on first start with mode 0600, beside the data it protects.',
  },
  CUSTOS_ROOT_KEY_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'File holding the root key (32 bytes, base64), outside DATA_DIR: a systemd credential or a Kubernetes secret mount.',
  },
  CUSTOS_ROOT_KEY_PREVIOUS: {
    schema: rootKeySchema.optional(),
    doc: 'During a root rotation (`custos keys rotate --root`): the old root key, while CUSTOS_ROOT_KEY holds the new one. Remove it once the rotation has finished.',
  },
  CUSTOS_ROOT_KEY_PREVIOUS_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'During a root rotation: the file of the old root key, while CUSTOS_ROOT_KEY_FILE names the new one.',
  },
  CUSTOS_PKCS11_MODULE: {
    schema: z.string().min(1).optional(),
    doc: 'PKCS#11 library of an HSM (e.g. /usr/lib/softhsm/libsofthsm2.so): the root wrapping key is generated in the HSM and never leaves it.',
  },
  CUSTOS_PKCS11_TOKEN_LABEL: { schema: z.string().min(1).optional(), doc: 'Label of the HSM token holding the root wrapping key (with CUSTOS_PKCS11_MODULE).' },
  CUSTOS_PKCS11_PIN_FILE: { schema: z.string().min(1).optional(), doc: 'File holding the user PIN of the HSM token (with CUSTOS_PKCS11_MODULE).' },
  CUSTOS_PKCS11_KEY_LABEL: {
    schema: z.string().min(1).max(64).default('custos-root'),
    doc: 'Label of the root wrapping key in the HSM token; generated there when missing on an empty database, or when CUSTOS_ROOT_KEY_PREVIOUS gives the software root it replaces.',
  },
  CUSTOS_KEY_CRYPTOPERIOD_DAYS: {
    schema: positiveInt.max(3650).default(365),
    doc: '`custos keys status` warns when the version in use of a KEK or of a service key is older than this many days (it rotates nothing itself).',
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
    doc: 'Redis for rate limits, sign-in attempt counters and detection windows shared by several server processes. Unset: in-process (attempt counters in the database).',
  },
  CUSTOS_AUDIT_FLUSH_MS: {
    schema: z.coerce.number().int().min(0).max(1000).default(8),
    doc: 'While an audit commit is in progress, the longest wait, in ms, before the entries of reads that arrived meanwhile start a second one (sooner once 32 are waiting, or when the first ends).',
  },
  CUSTOS_AUDIT_HEAD_INTERVAL_MS: {
    schema: z.coerce.number().int().min(100).max(3_600_000).default(1000),
    doc: 'The audit tree builder signs a tree head once the newest is this many ms old (with entries beyond it): the longest an admitted entry waits for a signed head, plus one builder pass (100 ms).',
  },
  CUSTOS_AUDIT_HEAD_ENTRIES: {
    schema: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    doc: 'The audit tree builder also signs a tree head once this many entries lie beyond the newest one, whichever comes first.',
  },
  CUSTOS_LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    doc: 'Log level.',
  },
  CUSTOS_PUBLIC_URL: {
    schema: z.url({ protocol: /^https?$/ }).optional(),
    doc: 'Public https:// URL of the privacy center and admin console: links in mails, and the origin accepted for cookie sessions besides the request\'s own. Unset: https://HOST:PORT.',
  },
  CUSTOS_SHOP_NAME: { schema: z.string().trim().min(1).max(100).default('Custos'), doc: 'The shop\'s name: in mails, in authenticator apps, and refused inside passwords.' },
  CUSTOS_CONTROLLER_NAME: { schema: z.string().trim().min(1).max(200).optional(), doc: 'The controller named in the privacy notice and the record of processing (GDPR Art. 13(1)(a), 30(1)(a)). Unset: CUSTOS_SHOP_NAME.' },
  CUSTOS_CONTROLLER_ADDRESS: { schema: z.string().trim().min(1).max(500).optional(), doc: "The controller's postal address, in the privacy notice." },
  CUSTOS_PRIVACY_CONTACT: { schema: z.string().trim().min(3).max(200).optional(), doc: 'Where customers send privacy questions and requests (an email address or URL), in the privacy notice.' },
  CUSTOS_DPO_CONTACT: { schema: z.string().trim().min(3).max(200).optional(), doc: "The data protection officer's contact, when the shop has one (GDPR Art. 13(1)(b), 37)." },
  CUSTOS_SMTP_URL: {
    schema: z.string().regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://').optional(),
    doc: 'Mail server for verification, reset and staff mails (smtps://user:pass@host:465, or smtp://…?requireTLS=true). Unset: mails are written to DATA_DIR/outbox.',
  },
  CUSTOS_MAIL_FROM: { schema: z.string().min(3).max(200).optional(), doc: 'Sender of mails. Unset: no-reply@ the host of CUSTOS_PUBLIC_URL.' },
  CUSTOS_SESSION_IDLE_MINUTES: {
    schema: positiveInt.max(60).default(60),
    doc: 'Customer sessions end after this many minutes without a request (at most 60: NIST SP 800-63B rev 4, AAL2).',
  },
  CUSTOS_SESSION_MAX_HOURS: { schema: positiveInt.max(24).default(24), doc: 'Customer sessions end this many hours after sign-in, used or not (at most 24: NIST SP 800-63B rev 4, AAL2).' },
  CUSTOS_STAFF_SESSION_IDLE_MINUTES: { schema: positiveInt.max(15).default(15), doc: 'Staff sessions end after this many idle minutes (at most 15: PCI DSS 4.0.1 8.2.8).' },
  CUSTOS_STAFF_SESSION_MAX_HOURS: { schema: positiveInt.max(24).default(12), doc: 'Staff sessions end this many hours after sign-in.' },
  CUSTOS_REAUTH_MINUTES: {
    schema: positiveInt.max(30).default(10),
    doc: 'How recent a password or passkey check must be to change a password or a second factor (step-up, ASVS 7.5.1).',
  },
  CUSTOS_PASSWORD_MAX_LENGTH: { schema: positiveInt.min(64).max(1024).default(256), doc: 'Longest password accepted, in characters (at least 64: ASVS 6.2.9; never truncated).' },
  CUSTOS_PASSWORD_HASH_CONCURRENCY: {
    schema: positiveInt.max(64).optional(),
    doc: 'Password hashes computed at once (argon2id, 19 MiB each); more wait in a bounded queue. Unset: CPU cores − 1, at most 3.',
  },
  CUSTOS_LOCKOUT_THRESHOLD: { schema: positiveInt.max(10).default(10), doc: 'Consecutive failed sign-ins that lock an account (at most 10: PCI DSS 4.0.1 8.3.4).' },
  CUSTOS_LOCKOUT_MINUTES: { schema: positiveInt.min(30).max(1440).default(30), doc: 'How long a locked account stays locked (at least 30: PCI DSS 4.0.1 8.3.4). Password reset keeps working.' },
  CUSTOS_SIGNIN_IP_LIMIT: { schema: positiveInt.default(100), doc: 'Sign-in attempts per client address (IPv6 per /64) per 15 minutes before a growing block.' },
  CUSTOS_SIGNIN_GLOBAL_LIMIT: { schema: positiveInt.default(10_000), doc: 'Sign-in attempts per minute across the service before a growing block.' },
  CUSTOS_AUTH_FAILURE_LIMIT: {
    schema: positiveInt.default(100),
    doc: 'Requests with an API key, bearer token or session that is not accepted, per client address (IPv6 per /64) per 15 minutes, before a growing block (429) during which the address is refused before any credential is checked.',
  },
  CUSTOS_TRAINING_VALIDITY_MONTHS: {
    schema: positiveInt.max(12).default(12),
    doc: 'How long a staff training completion counts (at most 12 months: PCI DSS 4.0.1 12.6.3).',
  },
  CUSTOS_RELAY_ALLOWLIST: {
    schema: z.string().min(1).optional(),
    doc: 'Card relay targets: comma-separated origins (https://api.processor.example). Plain http only for loopback hosts. Unset: the relay forwards nowhere.',
  },
  CUSTOS_STOREFRONT_ORIGINS: {
    schema: z.string().min(1).optional(),
    doc: 'Origins of the shop\'s checkout pages (https://shop.example, comma-separated) that may embed the card fields of /cards/collect (CSP frame-ancestors), receive their token by postMessage, and call POST /v1/cards/collect cross-origin (CORS). Plain http only for loopback hosts. Unset: no page may embed the card fields and no card session can be created.',
  },
  CUSTOS_RELAY_CA: { schema: z.string().min(1).optional(), doc: 'PEM file of a CA the relay trusts besides the system ones (a processor test environment).' },
  CUSTOS_CARDS_EXPIRY_GRACE_DAYS: {
    schema: positiveInt.max(400).default(30),
    doc: 'Days a card stays in the card vault after its expiry month before `custos cards sweep` removes it (PCI DSS 4.0.1 3.2.1).',
  },
  CUSTOS_CARDS_DETERMINISTIC: {
    schema: bool.default(false),
    doc: 'Card vault deterministic mode: a card already stored returns its existing token, found through a keyed-hash index of the PAN (PCI DSS 4.0.1 3.5.1.1); tokens stay random.',
  },
  CUSTOS_DETECTION: {
    schema: bool.default(true),
    doc: 'Run the detection rules over security events (README "Detection"). `false` turns the rules off; blocks already made still hold until they end.',
  },
  CUSTOS_DETECTION_RULES: {
    schema: z.string().min(1).optional(),
    doc: 'YAML or JSON file of detection rule settings over the built-in defaults (thresholds, windows, responses, alert-only, learning period). Unset: the defaults.',
  },
  CUSTOS_RIGHTS_JURISDICTION: {
    schema: z.enum(['gdpr', 'ccpa']).default('gdpr'),
    doc: 'The law whose deadlines a data-subject request follows when it names none: `gdpr` (one month, GDPR Art. 12(3)) or `ccpa` (45 days).',
  },
  CUSTOS_BOOKKEEPING_COUNTRY: {
    schema: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as DE').default('DE'),
    doc: "The shop's bookkeeping country (ISO 3166-1 alpha-2): which of the inventory's `by_country` retention periods holds records for bookkeeping law after an erasure (§147(4) AO: the shop's, not the customer's).",
  },
  CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS: {
    schema: z.coerce.number().int().min(1).max(365).default(30),
    doc: "Days after a customer's data key is destroyed (an erasure, an expired hold) until the retention sweep rotates and retires the key-encryption key that wrapped it, so copies of the key in backups can no longer be opened. Erasure receipts name the date.",
  },
  CUSTOS_RIGHTS_HOLIDAYS: {
    schema: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}(,\d{4}-\d{2}-\d{2})*$/, 'must be comma-separated YYYY-MM-DD dates')
      .optional(),
    doc: 'Public holidays (comma-separated YYYY-MM-DD) that are not working days when deadlines of data-subject requests are counted.',
  },
  CUSTOS_ALERT_WEBHOOK_URL: {
    schema: z.string().min(1).optional(),
    doc: 'Where alerts are posted as signed webhooks (Standard Webhooks): an https:// URL (plain http only to a loopback address). Needs CUSTOS_ALERT_WEBHOOK_SECRET.',
  },
  CUSTOS_ALERT_WEBHOOK_SECRET: {
    schema: z.string().min(1).optional(),
    doc: 'Signing secret of the alert webhook, `whsec_` + 24 to 64 random bytes in base64 (`echo whsec_$(openssl rand -base64 32)`). Several, separated by spaces, each sign (rotation without a gap).',
  },
  CUSTOS_ALERT_WEBHOOK_CA: { schema: z.string().min(1).optional(), doc: 'PEM file of a CA the alert webhook trusts besides the system ones.' },
  CUSTOS_ALERT_EMAIL: {
    schema: z.string().min(3).optional(),
    doc: 'Where alerts are mailed (comma-separated addresses), through CUSTOS_SMTP_URL and CUSTOS_MAIL_FROM (without a mail server, DATA_DIR/outbox).',
  },
  NATS_URL: {
    schema: z.string().regex(/^(nats|tls):\/\/[^/?#]+$/, 'must be nats://host:port or tls://host:port (credentials as user:password@ or token@)').optional(),
    doc: 'NATS server that alerts are published to (nats://host:4222, tls:// to require TLS; user:password@ or token@ for credentials), on CUSTOS_ALERT_NATS_SUBJECT.',
  },
  CUSTOS_ALERT_NATS_SUBJECT: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be a NATS subject of dot-separated tokens (letters, digits, _ and -), no wildcards')
      .max(255)
      .default('custos.security.alerts'),
    doc: 'NATS subject alerts are published on (with NATS_URL).',
  },
  CUSTOS_OCSF_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'File that security events and alerts are appended to as OCSF 1.3.0 JSON lines, created with mode 0600.',
  },
  CUSTOS_SYSLOG_URL: {
    schema: z
      .string()
      .regex(/^(tcp|tls):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?\/?$/, 'must be tcp://host:port or tls://host:port')
      .optional(),
    doc: 'Syslog server that security events and alerts go to as OCSF 1.3.0 JSON in RFC 5424 messages: tcp://host:port (RFC 6587 octet counting, default port 601) or tls://host:port (RFC 5425, default port 6514).',
  },
  CUSTOS_SYSLOG_CA: { schema: z.string().min(1).optional(), doc: 'PEM file of a CA trusted for the tls:// syslog server besides the system ones.' },
  CUSTOS_SHOPIFY_WEBHOOK_SECRET: {
    schema: z.string().min(1).optional(),
    doc: "The Shopify app's client secret, which signs its compliance webhooks (X-Shopify-Hmac-Sha256) sent to POST /v1/integrations/shopify/webhooks. Unset: that route answers 503.",
  },
  CUSTOS_SHOPIFY_SHOP_DOMAIN: {
    schema: z.string().regex(/^[a-z0-9][a-z0-9-]*\.myshopify\.com$/, 'must be a shop domain such as acme.myshopify.com').optional(),
    doc: 'The Shopify shop (acme.myshopify.com) whose compliance webhooks are accepted (X-Shopify-Shop-Domain). Unset: any shop the app secret signs for.',
  },
  CUSTOS_RIGHTS_EXPORT_LINK_HOURS: {
    schema: positiveInt.max(720).default(168),
    doc: 'How long the download link of an access or portability export works, in hours (at most 720); each link works once.',
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
  /** Where the root key comes from (src/crypto/root-provider.ts). */
  readonly root:
    | { readonly kind: 'keyring' }
    | { readonly kind: 'env'; readonly key: Secret<Buffer>; readonly previous: Secret<Buffer> | undefined }
    | { readonly kind: 'file'; readonly file: string; readonly previousFile: string | undefined }
    | {
        readonly kind: 'pkcs11';
        readonly module: string;
        readonly tokenLabel: string;
        readonly pinFile: string;
        readonly keyLabel: string;
        readonly previous: Secret<Buffer> | undefined;
      };
  readonly keyCryptoperiodDays: number;
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
  /** When the audit tree builder signs a head (CUSTOS_AUDIT_HEAD_INTERVAL_MS, CUSTOS_AUDIT_HEAD_ENTRIES). */
  readonly auditHeads: { readonly intervalMs: number; readonly entries: number };
  readonly logLevel: string;
  readonly publicUrl: string | undefined;
  readonly shopName: string;
  readonly controller: { readonly name: string; readonly address: string | undefined; readonly privacyContact: string | undefined; readonly dpoContact: string | undefined };
  readonly smtpUrl: Secret<string> | undefined;
  readonly mailFrom: string | undefined;
  readonly sessions: {
    readonly customerIdleMinutes: number;
    readonly customerMaxHours: number;
    readonly staffIdleMinutes: number;
    readonly staffMaxHours: number;
    readonly reauthMinutes: number;
  };
  readonly passwords: { readonly maxLength: number; readonly hashConcurrency: number | undefined };
  readonly lockout: {
    readonly threshold: number;
    readonly minutes: number;
    readonly ipLimit: number;
    readonly globalLimit: number;
    /** Failed authentications (API key, bearer, session) per client address per 15 minutes. */
    readonly authFailureLimit: number;
  };
  readonly trainingValidityMonths: number;
  /** Card vault: the same card gives the same token (keyed-hash index). */
  readonly cardsDeterministic: boolean;
  /** Days a card stays after its expiry month. */
  readonly cardsExpiryGraceDays: number;
  /** Card relay: allowed origins and an extra trusted CA file. */
  readonly relay: { readonly allowlist: readonly string[]; readonly caFile: string | undefined };
  readonly rights: {
    readonly jurisdiction: 'gdpr' | 'ccpa';
    readonly holidays: readonly string[];
    readonly bookkeepingCountry: string;
    /** CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS. */
    readonly kekRotationAfterErasureDays: number;
    /** CUSTOS_RIGHTS_EXPORT_LINK_HOURS. */
    readonly exportLinkHours: number;
  };
  /** Where alerts go besides the alerts table (src/modules/detection/outputs). */
  readonly alerts: {
    readonly webhook: { readonly url: string; readonly keys: Secret<readonly Buffer[]>; readonly caFile: string | undefined } | undefined;
    readonly email: readonly string[];
    readonly nats: { readonly url: Secret<string>; readonly subject: string } | undefined;
  };
  /** Where security events and alerts go as OCSF records. */
  readonly ocsf: {
    readonly file: string | undefined;
    readonly syslog: { readonly protocol: 'tcp' | 'tls'; readonly host: string; readonly port: number; readonly caFile: string | undefined } | undefined;
  };
  /** Checkout origins that may embed /cards/collect and call POST /v1/cards/collect (CUSTOS_STOREFRONT_ORIGINS). */
  readonly storefrontOrigins: readonly string[];
  /** Detection: whether the rules run, and the file of rule settings. */
  readonly detection: { readonly enabled: boolean; readonly rulesFile: string | undefined };
  /** Shopify compliance webhooks: the app secret that signs them, and the one shop accepted. */
  readonly shopify: { readonly webhookSecret: Secret<string> | undefined; readonly shopDomain: string | undefined };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const bad = (variable: string, message: string) => new ConfigError(`invalid configuration:\n  ${variable}: ${message}`);

/** One root key source; a root key file must lie outside DATA_DIR (a backup of the folder must not hold it). */
function rootSource(p: Parsed, dataDir: string, cwd: string): Config['root'] {
  const given = (['CUSTOS_ROOT_KEY', 'CUSTOS_ROOT_KEY_FILE', 'CUSTOS_PKCS11_MODULE'] as const).filter((v) => p[v] !== undefined);
  if (given.length > 1) throw bad(given[1]!, `set only one of ${given.join(', ')}`);
  if (p.CUSTOS_ROOT_KEY_PREVIOUS_FILE !== undefined && p.CUSTOS_ROOT_KEY_FILE === undefined)
    throw bad('CUSTOS_ROOT_KEY_PREVIOUS_FILE', 'goes with CUSTOS_ROOT_KEY_FILE');
  if (p.CUSTOS_ROOT_KEY_PREVIOUS !== undefined && p.CUSTOS_ROOT_KEY === undefined && p.CUSTOS_PKCS11_MODULE === undefined)
    throw bad('CUSTOS_ROOT_KEY_PREVIOUS', 'goes with CUSTOS_ROOT_KEY or CUSTOS_PKCS11_MODULE');
  const outside = (variable: string, file: string) => {
    const abs = resolve(cwd, file);
    if (abs === dataDir || abs.startsWith(`${dataDir}/`)) throw bad(variable, 'must lie outside CUSTOS_DATA_DIR: a copy of the data folder must not hold its key');
    return abs;
  };
  if (p.CUSTOS_ROOT_KEY !== undefined) return { kind: 'env', key: p.CUSTOS_ROOT_KEY, previous: p.CUSTOS_ROOT_KEY_PREVIOUS };
  if (p.CUSTOS_ROOT_KEY_FILE !== undefined) {
    const previousFile = p.CUSTOS_ROOT_KEY_PREVIOUS_FILE === undefined ? undefined : outside('CUSTOS_ROOT_KEY_PREVIOUS_FILE', p.CUSTOS_ROOT_KEY_PREVIOUS_FILE);
    return { kind: 'file', file: outside('CUSTOS_ROOT_KEY_FILE', p.CUSTOS_ROOT_KEY_FILE), previousFile };
  }
  if (p.CUSTOS_PKCS11_MODULE !== undefined) {
    if (p.CUSTOS_PKCS11_TOKEN_LABEL === undefined) throw bad('CUSTOS_PKCS11_TOKEN_LABEL', 'is required with CUSTOS_PKCS11_MODULE');
    if (p.CUSTOS_PKCS11_PIN_FILE === undefined) throw bad('CUSTOS_PKCS11_PIN_FILE', 'is required with CUSTOS_PKCS11_MODULE');
    return {
      kind: 'pkcs11',
      module: resolve(cwd, p.CUSTOS_PKCS11_MODULE),
      tokenLabel: p.CUSTOS_PKCS11_TOKEN_LABEL,
      pinFile: outside('CUSTOS_PKCS11_PIN_FILE', p.CUSTOS_PKCS11_PIN_FILE),
      keyLabel: p.CUSTOS_PKCS11_KEY_LABEL,
      previous: p.CUSTOS_ROOT_KEY_PREVIOUS,
    };
  }
  return { kind: 'keyring' };
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

  const root = rootSource(p, dataDir, cwd);

  return Object.freeze({
    host: p.CUSTOS_HOST,
    port: p.CUSTOS_PORT,
    dataDir,
    database: Object.freeze(database),
    rootKey: p.CUSTOS_ROOT_KEY,
    root: Object.freeze(root),
    keyCryptoperiodDays: p.CUSTOS_KEY_CRYPTOPERIOD_DAYS,
    tls: Object.freeze(tls),
    trustProxy: p.CUSTOS_TRUST_PROXY,
    inventoryFile: p.CUSTOS_INVENTORY === undefined ? undefined : resolve(cwd, p.CUSTOS_INVENTORY),
    phoneDefaultCountry: p.CUSTOS_PHONE_DEFAULT_COUNTRY,
    bodyLimit: p.CUSTOS_BODY_LIMIT,
    rateLimitPerMinute: p.CUSTOS_RATE_LIMIT,
    redisUrl: p.REDIS_URL === undefined ? undefined : new Secret(p.REDIS_URL),
    auditFlushMs: p.CUSTOS_AUDIT_FLUSH_MS,
    auditHeads: Object.freeze({ intervalMs: p.CUSTOS_AUDIT_HEAD_INTERVAL_MS, entries: p.CUSTOS_AUDIT_HEAD_ENTRIES }),
    logLevel: p.CUSTOS_LOG_LEVEL,
    publicUrl: p.CUSTOS_PUBLIC_URL === undefined ? undefined : new URL(p.CUSTOS_PUBLIC_URL).origin,
    shopName: p.CUSTOS_SHOP_NAME,
    controller: Object.freeze({
      name: p.CUSTOS_CONTROLLER_NAME ?? p.CUSTOS_SHOP_NAME,
      address: p.CUSTOS_CONTROLLER_ADDRESS,
      privacyContact: p.CUSTOS_PRIVACY_CONTACT,
      dpoContact: p.CUSTOS_DPO_CONTACT,
    }),
    smtpUrl: p.CUSTOS_SMTP_URL === undefined ? undefined : new Secret(p.CUSTOS_SMTP_URL),
    mailFrom: p.CUSTOS_MAIL_FROM,
    sessions: Object.freeze({
      customerIdleMinutes: p.CUSTOS_SESSION_IDLE_MINUTES,
      customerMaxHours: p.CUSTOS_SESSION_MAX_HOURS,
      staffIdleMinutes: p.CUSTOS_STAFF_SESSION_IDLE_MINUTES,
      staffMaxHours: p.CUSTOS_STAFF_SESSION_MAX_HOURS,
      reauthMinutes: p.CUSTOS_REAUTH_MINUTES,
    }),
    passwords: Object.freeze({ maxLength: p.CUSTOS_PASSWORD_MAX_LENGTH, hashConcurrency: p.CUSTOS_PASSWORD_HASH_CONCURRENCY }),
    lockout: Object.freeze({
      threshold: p.CUSTOS_LOCKOUT_THRESHOLD,
      minutes: p.CUSTOS_LOCKOUT_MINUTES,
      ipLimit: p.CUSTOS_SIGNIN_IP_LIMIT,
      globalLimit: p.CUSTOS_SIGNIN_GLOBAL_LIMIT,
      authFailureLimit: p.CUSTOS_AUTH_FAILURE_LIMIT,
    }),
    trainingValidityMonths: p.CUSTOS_TRAINING_VALIDITY_MONTHS,
    cardsDeterministic: p.CUSTOS_CARDS_DETERMINISTIC,
    cardsExpiryGraceDays: p.CUSTOS_CARDS_EXPIRY_GRACE_DAYS,
    relay: { allowlist: originList('CUSTOS_RELAY_ALLOWLIST', p.CUSTOS_RELAY_ALLOWLIST, 'https://api.processor.example'), caFile: p.CUSTOS_RELAY_CA },
    storefrontOrigins: Object.freeze(originList('CUSTOS_STOREFRONT_ORIGINS', p.CUSTOS_STOREFRONT_ORIGINS, 'https://shop.example')),
    detection: Object.freeze({ enabled: p.CUSTOS_DETECTION, rulesFile: p.CUSTOS_DETECTION_RULES === undefined ? undefined : resolve(cwd, p.CUSTOS_DETECTION_RULES) }),
    rights: Object.freeze({
      jurisdiction: p.CUSTOS_RIGHTS_JURISDICTION,
      bookkeepingCountry: p.CUSTOS_BOOKKEEPING_COUNTRY,
      kekRotationAfterErasureDays: p.CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS,
      holidays: Object.freeze(p.CUSTOS_RIGHTS_HOLIDAYS === undefined ? [] : p.CUSTOS_RIGHTS_HOLIDAYS.split(',')),
      exportLinkHours: p.CUSTOS_RIGHTS_EXPORT_LINK_HOURS,
    }),
    shopify: Object.freeze({
      webhookSecret: p.CUSTOS_SHOPIFY_WEBHOOK_SECRET === undefined ? undefined : new Secret(p.CUSTOS_SHOPIFY_WEBHOOK_SECRET),
      shopDomain: p.CUSTOS_SHOPIFY_SHOP_DOMAIN,
    }),
    alerts: alertOutputs(p, cwd),
    ocsf: ocsfOutputs(p, cwd),
  });
}

/** The alert webhook, mail and NATS settings; each bad value names its variable, never the value of a secret. */
function alertOutputs(p: Parsed, cwd: string): Config['alerts'] {
  const url = p.CUSTOS_ALERT_WEBHOOK_URL;
  const secret = p.CUSTOS_ALERT_WEBHOOK_SECRET;
  if (url !== undefined && secret === undefined) throw bad('CUSTOS_ALERT_WEBHOOK_SECRET', 'is required with CUSTOS_ALERT_WEBHOOK_URL');
  if (url === undefined && secret !== undefined) throw bad('CUSTOS_ALERT_WEBHOOK_URL', 'is required with CUSTOS_ALERT_WEBHOOK_SECRET');
  if (url === undefined && p.CUSTOS_ALERT_WEBHOOK_CA !== undefined) throw bad('CUSTOS_ALERT_WEBHOOK_CA', 'goes with CUSTOS_ALERT_WEBHOOK_URL');
  let webhook: Config['alerts']['webhook'];
  if (url !== undefined && secret !== undefined) {
    const problem = webhookUrlProblem(url);
    if (problem !== undefined) throw bad('CUSTOS_ALERT_WEBHOOK_URL', problem);
    const keys = secret.split(/\s+/).filter(Boolean).map((item, i) => {
      try {
        return parseWebhookSecret(item);
      } catch (error) {
        throw bad('CUSTOS_ALERT_WEBHOOK_SECRET', `secret ${i + 1} ${(error as Error).message}`);
      }
    });
    webhook = Object.freeze({ url, keys: new Secret(Object.freeze(keys)), caFile: p.CUSTOS_ALERT_WEBHOOK_CA === undefined ? undefined : resolve(cwd, p.CUSTOS_ALERT_WEBHOOK_CA) });
  }
  const email = (p.CUSTOS_ALERT_EMAIL ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  email.forEach((address, i) => {
    if (!z.email().safeParse(address).success) throw bad('CUSTOS_ALERT_EMAIL', `entry ${i + 1} is not an email address`);
  });
  const nats = p.NATS_URL === undefined ? undefined : Object.freeze({ url: new Secret(p.NATS_URL), subject: p.CUSTOS_ALERT_NATS_SUBJECT });
  return Object.freeze({ webhook, email: Object.freeze(email), nats });
}

function ocsfOutputs(p: Parsed, cwd: string): Config['ocsf'] {
  let syslog: Config['ocsf']['syslog'];
  if (p.CUSTOS_SYSLOG_URL !== undefined) {
    let url: URL;
    try {
      url = new URL(p.CUSTOS_SYSLOG_URL);
    } catch {
      throw bad('CUSTOS_SYSLOG_URL', 'must be tcp://host:port or tls://host:port, the port 1 to 65535');
    }
    const protocol = url.protocol === 'tls:' ? 'tls' : 'tcp';
    const port = url.port === '' ? (protocol === 'tls' ? 6514 : 601) : Number(url.port);
    if (port < 1 || port > 65535) throw bad('CUSTOS_SYSLOG_URL', 'the port must be 1 to 65535');
    if (p.CUSTOS_SYSLOG_CA !== undefined && protocol !== 'tls') throw bad('CUSTOS_SYSLOG_CA', 'goes with a tls:// CUSTOS_SYSLOG_URL');
    syslog = Object.freeze({ protocol, host: url.hostname.replace(/^\[|\]$/g, ''), port, caFile: p.CUSTOS_SYSLOG_CA === undefined ? undefined : resolve(cwd, p.CUSTOS_SYSLOG_CA) });
  } else if (p.CUSTOS_SYSLOG_CA !== undefined) throw bad('CUSTOS_SYSLOG_CA', 'goes with a tls:// CUSTOS_SYSLOG_URL');
  return Object.freeze({ file: p.CUSTOS_OCSF_FILE === undefined ? undefined : resolve(cwd, p.CUSTOS_OCSF_FILE), syslog });
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A comma-separated list of origins (CUSTOS_RELAY_ALLOWLIST, CUSTOS_STOREFRONT_ORIGINS); plain http only for loopback (local use). */
function originList(variable: string, value: string | undefined, example: string): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ConfigError(`invalid configuration:\n  ${variable}: ${JSON.stringify(item)} is not an origin such as ${example}`);
    }
    if (url.origin !== item.replace(/\/$/, '') || (url.protocol !== 'https:' && url.protocol !== 'http:'))
      throw new ConfigError(`invalid configuration:\n  ${variable}: ${JSON.stringify(item)} must be an origin (scheme, host, optional port) and nothing else`);
    if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname))
      throw new ConfigError(`invalid configuration:\n  ${variable}: ${JSON.stringify(item)} must use https (plain http only for loopback)`);
    out.push(url.origin);
  }
  return out;
}
