import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { Secret as OtpSecret, TOTP } from 'otpauth';
import { fixedClock } from '../../src/kernel/clock.ts';
import { CLI_OPERATOR } from '../../src/modules/staff/ports.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { unQuote } from '../support/smtp.ts';

/**
 * Sign-in suites drive the whole app through `app.inject()` on a fresh SQLite file or PostgreSQL
 * schema, with a clock that only moves when told (TOTP steps, idle and absolute limits, lockout).
 * Browser behaviour is played by hand: a cookie jar, and the Origin header a browser would send.
 */
export const PUBLIC = 'https://shop.example';
export const SAME_ORIGIN = { origin: PUBLIC };
export const STRONG = 'violet umbrellas march north at dawn';
export const CUSTOMER_COOKIE = '__Host-custos_session';
export const STAFF_COOKIE = '__Host-custos_staff';

export interface AuthTest extends TestApp {
  readonly clock: ReturnType<typeof fixedClock>;
  readonly logs: string[];
  /** Every mail written to the outbox so far (decoded). */
  outbox(): Promise<{ to: string; subject: string; body: string }[]>;
}


export async function authApp(env: Record<string, string> = {}): Promise<AuthTest> {
  const clock = fixedClock(new Date('2026-03-02T10:00:00.000Z'));
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const t = await testApp({ clock, logStream, env: { CUSTOS_PUBLIC_URL: PUBLIC, CUSTOS_SHOP_NAME: 'Acme Outdoor', CUSTOS_LOG_LEVEL: 'info', CUSTOS_SIGNIN_IP_LIMIT: '100000', ...env } });
  return {
    ...t,
    clock,
    logs,
    async outbox() {
      await t.runtime.identity.mail.idle();
      const dir = join(t.db.dir, 'outbox');
      if (!existsSync(dir)) return [];
      return readdirSync(dir)
        .sort()
        .map((f) => {
          const raw = unQuote(readFileSync(join(dir, f), 'utf8'));
          return { to: /^To: (.*)$/m.exec(raw)?.[1]?.trim() ?? '', subject: /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '', body: raw };
        });
    },
  };
}

export const uniqueEmail = (name = 'kim') => `${name}.${randomBytes(4).toString('hex')}@example.com`;

/** The token of a link in a mail body (`…#token=<id>.<secret>`). */
export function tokenIn(body: string): string {
  const m = /#token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(body);
  if (m === null) throw new Error('no link token in the mail');
  return m[1]!;
}

/** Cookies as a browser keeps them: Set-Cookie answers update the jar, Max-Age=0 deletes. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();
  take(res: LightMyRequestResponse): this {
    const raw = res.headers['set-cookie'];
    for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/Max-Age=0\b/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return this;
  }
  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }
  set(name: string, value: string): this {
    this.#cookies.set(name, value);
    return this;
  }
  header(): Record<string, string> {
    return this.#cookies.size === 0 ? {} : { cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }
}

/** A request as a same-origin browser page sends it, with the jar's cookies. */
export async function browser(t: TestApp, jar: CookieJar, method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, payload?: unknown, headers: Record<string, string> = {}) {
  const res = await t.app.inject({
    method,
    url,
    headers: { ...jar.header(), ...(method === 'GET' ? {} : SAME_ORIGIN), ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  jar.take(res);
  return res;
}

/** Signs up and verifies through the mail, like a person would; returns the email. */
export async function customer(t: AuthTest, password = STRONG, email = uniqueEmail()): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password } });
  if (res.statusCode !== 202) throw new Error(`sign-up answered ${res.statusCode}: ${res.body}`);
  const mail = (await t.outbox()).filter((m) => m.to === email && /Confirm/.test(m.subject)).at(-1);
  if (mail === undefined) throw new Error('no verification mail');
  const verified = await t.app.inject({ method: 'POST', url: '/v1/auth/verify-email', headers: SAME_ORIGIN, payload: { token: tokenIn(mail.body) } });
  if (verified.statusCode !== 200) throw new Error(`verification answered ${verified.statusCode}`);
  return email;
}

/** Signs in with a cookie; returns the jar holding the session. */
export async function signIn(t: TestApp, email: string, password = STRONG, jar = new CookieJar(), prefix = '/v1/auth') {
  const res = await browser(t, jar, 'POST', `${prefix}/signin`, { email, password });
  return { res, jar };
}

export function totpCode(secret: string, at: Date): string {
  return new TOTP({ secret: OtpSecret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: at.getTime() });
}

/** Turns TOTP on for the signed-in jar's account; returns the secret and the recovery codes. */
export async function enrolTotp(t: AuthTest, jar: CookieJar, prefix = '/v1/auth') {
  const started = await browser(t, jar, 'POST', `${prefix}/totp`);
  if (started.statusCode !== 200) throw new Error(`totp enrolment answered ${started.statusCode}: ${started.body}`);
  const { secret } = started.json<{ secret: string }>();
  const confirmed = await browser(t, jar, 'POST', `${prefix}/totp/confirm`, { code: totpCode(secret, t.clock.now()) });
  if (confirmed.statusCode !== 200) throw new Error(`totp confirmation answered ${confirmed.statusCode}: ${confirmed.body}`);
  // The next code must come from a later step (each step is accepted once).
  t.clock.advance(30_000);
  return { secret, recoveryCodes: confirmed.json<{ recovery_codes: string[] }>().recovery_codes };
}

/** A staff member who accepted the invitation and set a password; optionally with training recorded. */
export async function staffMember(t: AuthTest, role: string, options: { trainedOn?: string } = {}) {
  const email = uniqueEmail('staff');
  const { member, invitation } = await t.runtime.staff.members.create(CLI_OPERATOR, { email, role });
  const token = /#token=(\S+)$/.exec(invitation.link.reveal())?.[1];
  const accepted = await t.app.inject({ method: 'POST', url: '/v1/staff/invitations/accept', headers: SAME_ORIGIN, payload: { token, password: STRONG } });
  if (accepted.statusCode !== 200) throw new Error(`invitation answered ${accepted.statusCode}: ${accepted.body}`);
  if (options.trainedOn !== undefined)
    await t.runtime.staff.training.recordCompletion(CLI_OPERATOR, { memberId: member.id, course: 'security_awareness', completedOn: options.trainedOn });
  return { email, memberId: member.id };
}

/** A real SMTP server in this process that keeps what it receives; and the quoted-printable decoder. */
export { smtpServer } from '../support/smtp.ts';
export { unQuote };
/** The error code of an answer. */
export const codeOf = (res: LightMyRequestResponse) => res.json<{ error?: { code?: string } }>().error?.code;

/** An answer's body without its request id, to compare two answers for sameness. */
export const withoutRequestId = (res: LightMyRequestResponse) => res.body.replace(/"request_id":"[^"]*"/, '"request_id":"…"');

export type { LightMyRequestResponse };
