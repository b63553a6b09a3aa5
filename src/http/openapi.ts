import { allErrors } from '../kernel/errors.ts';
import { SESSION_COOKIE } from './session.ts';

/**
 * The OpenAPI document is completed here, in one place, from what the server enforces: which
 * credentials each API area accepts (the Fastify scope a route lives in decides that, not the
 * route), the error codes each area answers with, a stable `operationId` for generated clients,
 * and the `servers` entry from the configured public URL. Routes only declare their schemas,
 * summaries and, where they have more to say, descriptions.
 */

type Json = Record<string, unknown>;
type Requirement = Record<string, string[]>;

export const SECURITY_SCHEMES = {
  apiKey: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'ck_…',
    description: 'An API key from `custos apikey create`, scoped to purposes: `Authorization: Bearer ck_…`.',
  },
  cardSessionKey: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'cpk_…',
    description: 'A single-use publishable key from `POST /v1/cards/sessions` (15 minutes, one tokenisation): `Authorization: Bearer cpk_…`. The card fields at /cards/collect send it; nothing else accepts it.',
  },
  customerSessionToken: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'cs_…',
    description: 'A customer session token (sign-in with `"session_delivery": "token"`): `Authorization: Bearer cs_…`. No origin check: browsers never attach it on their own.',
  },
  customerSessionCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE.customer,
    description: `The customer session cookie set by sign-in (\`__Host-\`, HttpOnly, Secure, SameSite=Lax). Unsafe requests (POST, PUT, PATCH, DELETE) carried by it must send an \`Origin\` header naming Custos's own origin or CUSTOS_PUBLIC_URL (CSRF).`,
  },
  staffSessionToken: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'cs_…',
    description: 'A staff session token (staff sign-in with `"session_delivery": "token"` and a second factor): `Authorization: Bearer cs_…`.',
  },
  staffSessionCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE.staff,
    description: 'The staff session cookie set by staff sign-in (`__Host-`, HttpOnly, Secure, SameSite=Strict). Unsafe requests carried by it must send a matching `Origin` header (CSRF).',
  },
} as const;

type Scheme = keyof typeof SECURITY_SCHEMES;

interface Area {
  /** Alternatives: any one of them authenticates. Empty: no authentication. */
  readonly security: readonly Scheme[];
  /** The credential may be left out (the operation then acts on no session). */
  readonly optional?: boolean;
  readonly words: string;
  /** Module prefixes of the error codes this area answers with (besides the HTTP layer's). */
  readonly errors: readonly string[];
  /** Further single codes this area answers with. */
  readonly extraCodes?: readonly string[];
}

const CUSTOMER: Area = {
  security: ['customerSessionToken', 'customerSessionCookie'],
  words: 'a customer session (bearer token or cookie)',
  errors: ['IDENTITY'],
};
const STAFF: Area = {
  security: ['staffSessionToken', 'staffSessionCookie'],
  words: 'a staff session with a verified second factor (bearer token or cookie)',
  errors: ['IDENTITY', 'STAFF'],
};

/** Sign-in, sign-up and the steps that a link or a ticket authorises: no session needed. */
const PUBLIC_AUTH = /^\/v1\/(?:staff\/)?auth\/(?:signin|signin\/mfa|signup|verify-email|password-reset|password-reset\/confirm|passkeys\/signin|claim)$/;

/** Which credentials the scope serving `path` accepts (src/app.ts, identity/routes/routes.ts). */
export function areaOf(path: string): Area | undefined {
  if (PUBLIC_AUTH.test(path) || path === '/v1/staff/invitations/accept')
    return { security: [], words: 'none', errors: path.startsWith('/v1/staff/') ? ['IDENTITY', 'STAFF'] : ['IDENTITY'] };
  // Without a session these act on none (sign-out) or serve sign-in (passkey options; step-up needs one).
  if (path === '/v1/auth/signout' || path === '/v1/auth/passkeys/authentication/options') return { ...CUSTOMER, optional: true };
  if (path === '/v1/staff/auth/signout' || path === '/v1/staff/auth/passkeys/authentication/options')
    return { ...STAFF, optional: true, words: 'a staff session (bearer token or cookie)' };
  if (path.startsWith('/v1/staff/auth/')) return { ...STAFF, words: 'a staff session (bearer token or cookie)' };
  if (path.startsWith('/v1/staff/')) return STAFF;
  if (path === '/v1/security/incidents' || path.startsWith('/v1/security/incidents/')) return { ...STAFF, errors: ['IDENTITY', 'STAFF', 'INCIDENTS', 'AUDIT'] };
  // Public: the privacy notice, receipt keys and their check, and links whose token authorises them.
  if (/^\/v1\/(?:privacy-notice(?:\.css)?|keys\/receipts|receipts\/verify|unsubscribe\/\{token\}|consents\/confirm\/\{token\})$/.test(path) || path.startsWith('/.well-known/'))
    return { security: [], words: 'none', errors: ['CONSENT'] };
  if (path === '/v1/security/posture') return STAFF;
  // The export download: its signed single-use link token is the credential (rights/routes-export.ts).
  if (path === '/v1/exports/download') return { security: [], words: 'none (the link token authorises it)', errors: ['RIGHTS'] };
  // Shopify's compliance webhooks: the HMAC signature over the body authorises them (rights/shopify.ts).
  if (path === '/v1/integrations/shopify/webhooks') return { security: [], words: 'none (the X-Shopify-Hmac-Sha256 signature authorises it)', errors: ['RIGHTS'] };
  if (path === '/v1/processors' || path.startsWith('/v1/processors/')) return { ...STAFF, errors: ['IDENTITY', 'STAFF', 'PROCESSORS', 'CONSENT'] };
  if (path === '/v1/ropa' || path === '/v1/data-map' || path.startsWith('/v1/purposes/'))
    return {
      security: ['apiKey', 'staffSessionToken', 'staffSessionCookie'],
      words: 'an API key scoped to purposes, or a staff session',
      errors: ['CONSENT', 'TRANSPARENCY', 'PROCESSORS', 'POLICY', 'APIKEY', 'STAFF', 'VAULT', 'AUDIT'],
      extraCodes: ['IDENTITY_SESSION_REQUIRED', 'IDENTITY_AUTH_THROTTLED'],
    };
  if (path.startsWith('/v1/auth/') || path === '/v1/me' || path.startsWith('/v1/me/')) return { ...CUSTOMER, errors: ['IDENTITY', 'VAULT', 'POLICY', 'AUDIT', 'RIGHTS'] };
  if (path === '/v1/keys/audit') return { security: [], words: 'none', errors: [] };
  if (path === '/v1/audit/consistency')
    return { security: ['apiKey', 'staffSessionToken', 'staffSessionCookie'], words: 'an API key, or a staff session', errors: ['AUDIT', 'APIKEY', 'STAFF'], extraCodes: ['IDENTITY_SESSION_REQUIRED'] };
  if (/^\/v1\/(?:customers|orders|rights)(?:\/|$)/.test(path))
    return {
      security: ['apiKey', 'staffSessionToken', 'staffSessionCookie'],
      words: 'an API key scoped to purposes, or a staff session',
      errors: ['VAULT', 'POLICY', 'APIKEY', 'STAFF', 'AUDIT', 'RIGHTS'],
      extraCodes: [
        'IDENTITY_SESSION_REQUIRED',
        'IDENTITY_AUTH_THROTTLED',
        // The invitation (identity/routes/routes-claim.ts) mails through identity's budget.
        ...(path === '/v1/customers/{id}/invitation' ? ['IDENTITY_INVITATION_NO_EMAIL', 'IDENTITY_THROTTLED'] : []),
      ],
    };
  if (path === '/v1/cards/collect')
    return { security: ['cardSessionKey'], words: 'a publishable key of a card session', errors: ['CARDS', 'POLICY', 'AUDIT', 'VAULT'], extraCodes: ['IDENTITY_AUTH_THROTTLED'] };
  if (path === '/v1/security/alerts' || path.startsWith('/v1/security/alerts/'))
    return {
      security: ['apiKey', 'staffSessionToken', 'staffSessionCookie'],
      words: 'an API key scoped to the security purpose, or a staff session holding incidents.manage',
      errors: ['DETECTION', 'APIKEY', 'STAFF'],
      // Malformed ids and bodies answer with the codes every API-scope route uses (http/error-handler.ts).
      extraCodes: ['IDENTITY_SESSION_REQUIRED', 'IDENTITY_AUTH_THROTTLED', 'VAULT_ID_MALFORMED', 'VAULT_FIELD_INVALID', 'VAULT_FIELD_UNDECLARED'],
    };
  if (/^\/v1\/(?:cards|relay)(?:\/|$)/.test(path))
    return {
      security: ['apiKey', 'staffSessionToken', 'staffSessionCookie'],
      words: 'an API key scoped to the payments purpose, or a staff session',
      errors: ['CARDS', 'POLICY', 'APIKEY', 'STAFF', 'AUDIT', 'VAULT'],
      extraCodes: ['IDENTITY_SESSION_REQUIRED'],
    };
  return undefined;
}

/** Codes any route may answer with: the HTTP layer's, and a source blocked by detection (src/app.ts onRequest). */
const HTTP_CODES = ['REQUEST_', 'ROUTE_NOT_FOUND', 'RATE_LIMITED', 'INTERNAL_ERROR', 'DETECTION_SOURCE_BLOCKED'];

/**
 * The codes of `status` this area answers with (with the Idempotency-Key codes where the operation
 * takes that header); every code of that status when none matches.
 */
function codesFor(area: Area | undefined, status: number, idempotent: boolean): string[] {
  const all = allErrors().filter((e) => e.status === status);
  if (area === undefined) return all.map((e) => e.code);
  const mine = all.filter(
    (e) =>
      HTTP_CODES.some((p) => e.code.startsWith(p)) ||
      (idempotent && e.code.startsWith('IDEMPOTENCY_KEY_')) ||
      area.errors.some((m) => e.code.startsWith(`${m}_`)) ||
      area.extraCodes?.includes(e.code) === true,
  );
  return (mine.length > 0 ? mine : all).map((e) => e.code);
}

const camel = (words: string[]) => words.map((w, i) => (i === 0 ? w.toLowerCase() : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())).join('');

/**
 * `operationId` from method and path: the method, then each literal segment after /v1 (kebab-case
 * joined), then `By<Param>` when the path ends in a parameter. GET /v1/customers/{id} →
 * `getCustomersById`; POST /v1/staff/members/{id}/suspend → `postStaffMembersSuspend`.
 */
export function operationIdOf(method: string, path: string): string {
  const segments = path.split('/').filter((s) => s !== '' && s !== 'v1');
  const words: string[] = [method];
  for (const segment of segments) if (!segment.startsWith('{')) words.push(...segment.split(/[-_.]/).filter(Boolean));
  const last = segments.at(-1);
  if (last?.startsWith('{') === true) words.push('by', last.slice(1, -1));
  return camel(words);
}

const isErrorBody = (schema: unknown): boolean => {
  const props = (schema as { properties?: Json } | undefined)?.properties;
  const inner = (props?.error as { properties?: Json } | undefined)?.properties;
  return props !== undefined && Object.keys(props).length === 1 && inner !== undefined && 'code' in inner && 'request_id' in inner;
};

/** Examples in the default inventory's terms; only the properties a schema has are kept. */
const EXAMPLES: Record<string, Json> = {
  CustomerWrite: { email: 'ada@example.org', name: 'Ada Lovelace', phone: '+44 20 7946 0958', date_of_birth: '1985-12-10', locale: 'en-GB' },
  CustomerPatch: { phone: null, locale: 'en-US' },
  AddressWrite: { line1: '12 St James’s Square', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB' },
  OrderWrite: {
    number: 'SO-1001',
    placed_at: '2026-11-30T10:15:00Z',
    currency: 'EUR',
    total: '49.90',
    status: 'paid',
    items: [{ sku: 'TEA-01', name: 'Earl Grey, 250 g', quantity: 2, unit_price: '24.95' }],
  },
};

/** Request body examples of inline (unnamed) bodies, by operationId; filtered like EXAMPLES. */
const BODY_EXAMPLES: Record<string, Json> = {
  postAuthSignup: { email: 'ada@example.org', password: 'correct horse battery staple' },
  postAuthSignin: { email: 'ada@example.org', password: 'correct horse battery staple', session_delivery: 'token' },
  postAuthSigninMfa: { mfa_ticket: 'the mfa_ticket from sign-in', code: '123456', session_delivery: 'token' },
  postAuthClaim: { token: 'the token from the link', password: 'correct horse battery staple' },
  postStaffAuthSignin: { email: 'it@shop.example', password: 'a long staff passphrase', session_delivery: 'cookie' },
  postStaffInvitationsAccept: { token: 'the token from the link', password: 'a long staff passphrase' },
  postStaffTrainingCompletions: { member_id: 'stf_01M8Y16ZGWZXCPWZSJ7YSRPJAP', course: 'security_awareness', completed_on: '2026-11-30' },
};

/** `example` keeps only the properties `schema` declares. */
function fitted(example: Json, schema: Json | undefined): Json | undefined {
  const props = schema?.properties as Json | undefined;
  return props === undefined ? undefined : Object.fromEntries(Object.entries(example).filter(([k]) => k in props));
}

const ERROR_SCHEMA = {
  type: 'object',
  description: 'Every error answer. `code` is stable (docs/errors.md); `message` says what happened, never with personal data; some codes add non-personal details such as `fields`.',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'Stable, module-prefixed code from docs/errors.md.' },
        message: { type: 'string', description: 'What happened, for people.' },
        request_id: { type: 'string', description: 'The request id, also sent as the X-Request-Id header; finds the request in the log.' },
      },
      required: ['code', 'message', 'request_id'],
      additionalProperties: true,
    },
  },
  required: ['error'],
  additionalProperties: false,
  example: { error: { code: 'VAULT_FIELD_UNDECLARED', message: 'the inventory does not declare: nickname', request_id: '0b7c1e52-3f4a-4d8e-9b1a-6c2d5e8f9a01', fields: ['nickname'] } },
};

const PURPOSE_HEADER = 'Custos-Purpose';

/** What each tag groups, for the docs page and generated clients. */
const TAG_DESCRIPTIONS: Record<string, string> = {
  customers: 'Customers and their addresses, stored and read by shop backends (API key) and staff (staff session), through the policy.',
  orders: 'Purchase history.',
  cards: 'The card vault: payment cards tokenised, read without the PAN, deleted (purpose `payments`).',
  audit: 'Public keys and consistency proofs for checking the signed audit log (docs/adr/0004-audit-merkle-log.md).',
  auth: 'Customer sign-up, sign-in, second factors, passkeys, sessions and password changes.',
  me: "A signed-in customer's own data and who touched it.",
  rights: 'Data-subject requests (access, portability, rectification, erasure, restriction, objection) with their deadlines; docs/rights-requests.md.',
  'staff auth': 'Staff sign-in, second factors, passkeys, sessions and password changes.',
  staff: 'Staff members, invitations and roles.',
  'staff training': 'Training courses and completions; missing or expired training blocks access to customer data.',
  'staff security': 'Threat reports by staff.',
  'staff elevation': 'Just-in-time access to one customer for one purpose beyond the role.',
  incidents: 'The incident register: the 72-hour clock, blast radius from the audit log, notification drafts (docs/when-something-goes-wrong.md).',
  security: 'The security posture (`custos doctor`, for incidents.manage) and the security alerts raised by the detection rules (README "Detection"): listed, acknowledged and closed by security officers (incidents.manage) or an API key scoped to `security`.',
};

function completeOperation(method: string, path: string, op: Json, ids: Map<string, string>): void {
  const area = areaOf(path);
  if (typeof op.operationId !== 'string') op.operationId = operationIdOf(method, path);
  const id = op.operationId as string;
  const seen = ids.get(id);
  if (seen !== undefined) throw new Error(`OpenAPI: operationId ${id} of ${method.toUpperCase()} ${path} is also that of ${seen}`);
  ids.set(id, `${method.toUpperCase()} ${path}`);

  if (area !== undefined) {
    const requirements: Requirement[] = area.security.map((s) => ({ [s]: [] }));
    op.security = area.optional === true ? [...requirements, {}] : requirements;
  } else if (op.security === undefined) op.security = [];

  // Custos-Purpose: reads must state it; on writes staff sessions must, API keys may leave it out.
  const parameters = (op.parameters ?? []) as Json[];
  const idempotent = parameters.some((p) => p.in === 'header' && String(p.name).toLowerCase() === 'idempotency-key');
  for (const p of parameters) {
    if (p.in !== 'header' || String(p.name).toLowerCase() !== 'custos-purpose') continue;
    p.name = PURPOSE_HEADER;
    if (method === 'get') {
      p.required = true;
      p.description = 'Why this data is read: a purpose declared in the inventory that the caller is scoped to. Required: a read without it is refused (POLICY_PURPOSE_REQUIRED).';
    } else {
      p.description =
        'The purpose this write serves: a purpose declared in the inventory that the caller is scoped to. Staff sessions must send it; an API key that leaves it out writes through its purposes together.';
    }
    p.example = method === 'get' ? 'support' : 'account';
  }

  const summary = typeof op.summary === 'string' ? op.summary : `${method.toUpperCase()} ${path}`;
  const own = typeof op.description === 'string' && op.description.trim() !== '' ? op.description.trim() : `${summary.replace(/\.$/, '')}.`;
  const auth =
    area === undefined || area.security.length === 0
      ? 'Authentication: none.'
      : `Authentication: ${area.words}${area.optional === true ? ', when there is one' : ''}.`;
  op.description = `${own}\n\n${auth}`;

  const bodyExample = BODY_EXAMPLES[id];
  const media = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.['application/json'];
  if (bodyExample !== undefined && media !== undefined) {
    const example = fitted(bodyExample, media.schema as Json | undefined);
    if (example !== undefined) media.example = example;
  }

  const responses = (op.responses ?? {}) as Record<string, Json>;
  for (const [status, response] of Object.entries(responses)) {
    const code = Number(status);
    if (code < 400) {
      if (response.description === 'Default Response') response.description = code === 204 ? 'Done; no content.' : 'Success.';
      continue;
    }
    const content = response.content as Record<string, { schema?: unknown }> | undefined;
    // Errors answer JSON whatever an operation's success answers (a route that `produces` a file).
    if (content !== undefined && Object.values(content).some((media) => isErrorBody(media.schema)))
      response.content = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
    const codes = codesFor(area, code, idempotent);
    response.description = codes.length === 0 ? 'Error.' : `Error; \`code\` is one of: ${codes.map((c) => `\`${c}\``).join(', ')}.`;
  }
  if (!Object.keys(responses).some((s) => s.startsWith('4'))) {
    responses['429'] = {
      description: `Error; \`code\` is one of: ${codesFor(area, 429, idempotent).map((c) => `\`${c}\``).join(', ')}.`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  op.responses = responses;
}

/**
 * Completes the generated document (after fastify-type-provider-zod's own transform): security
 * schemes and each operation's security, operationIds, descriptions, error codes per response,
 * the purpose header, examples and `servers`.
 */
export function completeOpenApi(document: Json, serverUrl: string): Json {
  const ids = new Map<string, string>();
  const paths = (document.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const [path, item] of Object.entries(paths))
    for (const [method, op] of Object.entries(item)) if (['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(method)) completeOperation(method, path, op, ids);
  const components = (document.components ?? {}) as Record<string, Record<string, unknown>>;
  const schemas = (components.schemas ?? {}) as Record<string, Json>;
  schemas.Error = ERROR_SCHEMA;
  // Request bodies use the `…Input` variant of a schema (zod's input side).
  for (const [name, example] of Object.entries(EXAMPLES))
    for (const schema of [schemas[name], schemas[`${name}Input`]]) {
      const fit = fitted(example, schema);
      if (schema !== undefined && fit !== undefined) schema.example = fit;
    }
  const used = new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((op) => (Array.isArray(op.tags) ? (op.tags as string[]) : []))));
  const completed = {
    ...document,
    tags: [...used].sort().map((name) => (TAG_DESCRIPTIONS[name] === undefined ? { name } : { name, description: TAG_DESCRIPTIONS[name] })),
    servers: [{ url: serverUrl, description: 'This Custos (CUSTOS_PUBLIC_URL, or the address it listens on).' }],
    components: { ...components, schemas, securitySchemes: SECURITY_SCHEMES },
  };
  dropUnusedSchemas(completed, schemas);
  return completed;
}

/** Removes component schemas nothing refers to (the zod transform emits both sides of every named schema). */
function dropUnusedSchemas(document: Json, schemas: Record<string, Json>): void {
  for (;;) {
    const used = new Set<string>();
    const walk = (node: unknown, skip: string | undefined): void => {
      if (Array.isArray(node)) for (const v of node) walk(v, skip);
      else if (node !== null && typeof node === 'object')
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
            const name = v.slice('#/components/schemas/'.length);
            if (name !== skip) used.add(name);
          } else walk(v, skip);
        }
    };
    walk(document.paths, undefined);
    for (const [name, schema] of Object.entries(schemas)) walk(schema, name);
    const unused = Object.keys(schemas).filter((name) => !used.has(name));
    if (unused.length === 0) return;
    for (const name of unused) delete schemas[name];
  }
}
