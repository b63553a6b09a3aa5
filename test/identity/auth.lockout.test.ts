import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, codeOf, customer, SAME_ORIGIN, signIn, tokenIn, uniqueEmail, type AuthTest, type LightMyRequestResponse } from './helpers.ts';

/**
 * Guessing past the lockout (PCI DSS 4.0.1 8.3.4: lock after at most 10 attempts, for at least 30
 * minutes): attempts are counted before the password is checked, so 30 guesses fired at once get
 * at most 10 evaluations; the lock holds for the right password too, and answers an unknown email
 * the same way; password reset keeps working and lifts it. Per-address throttling stops one client
 * without stopping the others.
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(async () => t.close());

const attempt = (email: string, password: string, ip = '203.0.113.7') =>
  t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { ...SAME_ORIGIN, 'x-forwarded-for': ip }, payload: { email, password } });

const tally = (answers: LightMyRequestResponse[]) => {
  const out: Record<string, number> = {};
  for (const a of answers) out[`${a.statusCode} ${codeOf(a) ?? ''}`.trim()] = (out[`${a.statusCode} ${codeOf(a) ?? ''}`.trim()] ?? 0) + 1;
  return out;
};

describe('lockout under parallel guessing', () => {
  it('evaluates at most 10 of 30 parallel wrong passwords, then locks — even for the right one', async () => {
    const email = await customer(t);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(email, `wrong guess number ${i} of thirty`)));
    const counts = tally(answers);
    expect((counts['401 IDENTITY_SIGNIN_FAILED'] ?? 0) + (counts['423 IDENTITY_ACCOUNT_LOCKED'] ?? 0)).toBe(30);
    expect(counts['401 IDENTITY_SIGNIN_FAILED']).toBeLessThanOrEqual(10);
    expect(counts['423 IDENTITY_ACCOUNT_LOCKED']).toBeGreaterThanOrEqual(20);
    const locked = answers.find((a) => a.statusCode === 423)!;
    expect(locked.json<{ error: { retry_after_seconds: number } }>().error.retry_after_seconds).toBeGreaterThan(29 * 60);
    const right = await attempt(email, 'violet umbrellas march north at dawn');
    expect(right.statusCode).toBe(423);
    // Each evaluated failure and the lock are in the audit log, under the OWASP names.
    const { jar } = await (async () => {
      t.clock.advance(31 * 60_000);
      return signIn(t, email);
    })();
    await t.runtime.audit.chainPending();
    const log = await t.app.inject({ method: 'GET', url: '/v1/me/access-log?limit=500', headers: jar.header() });
    const actions = log.json<{ data: { action: string }[] }>().data.map((e) => e.action);
    expect(actions.filter((a) => a === 'identity.authn_login_lock')).toHaveLength(1);
    expect(actions).toContain('identity.authn_login_fail_max');
    expect(actions.filter((a) => a === 'identity.authn_login_fail').length).toBeGreaterThanOrEqual(30);
  });

  it('records a success after failures as such', async () => {
    const email = await customer(t);
    for (let i = 0; i < 3; i++) expect((await attempt(email, 'not it, not it at all')).statusCode).toBe(401);
    const { jar } = await signIn(t, email);
    await t.runtime.audit.chainPending();
    const log = await t.app.inject({ method: 'GET', url: '/v1/me/access-log', headers: jar.header() });
    expect(log.json<{ data: { action: string }[] }>().data.map((e) => e.action)).toContain('identity.authn_login_successafterfail');
  });

  it('locks an unknown email exactly like a known one (no enumeration through the lock)', async () => {
    const email = await customer(t);
    const unknown = uniqueEmail();
    const a = tally(await Promise.all(Array.from({ length: 12 }, () => attempt(email, 'wrong wrong wrong wrong'))));
    const b = tally(await Promise.all(Array.from({ length: 12 }, () => attempt(unknown, 'wrong wrong wrong wrong'))));
    expect(b).toEqual(a);
  });

  it('lets password reset work during the lock, and the reset lifts it', async () => {
    const email = await customer(t);
    await Promise.all(Array.from({ length: 15 }, () => attempt(email, 'a wrong password again')));
    expect((await attempt(email, 'violet umbrellas march north at dawn')).statusCode).toBe(423);
    const asked = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } });
    expect(asked.statusCode).toBe(202);
    const mail = (await t.outbox()).filter((m) => m.to === email && /Reset/.test(m.subject)).at(-1)!;
    const done = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/password-reset/confirm',
      headers: SAME_ORIGIN,
      payload: { token: tokenIn(mail.body), password: 'a brand new passphrase for kim' },
    });
    expect(done.statusCode).toBe(200);
    expect((await attempt(email, 'a brand new passphrase for kim')).statusCode).toBe(200);
  });

  it('unlocks by itself after 30 minutes', async () => {
    const email = await customer(t);
    await Promise.all(Array.from({ length: 10 }, () => attempt(email, 'a wrong password again')));
    expect((await attempt(email, 'violet umbrellas march north at dawn')).statusCode).toBe(423);
    t.clock.advance(29 * 60_000);
    expect((await attempt(email, 'violet umbrellas march north at dawn')).statusCode).toBe(423);
    t.clock.advance(2 * 60_000);
    expect((await attempt(email, 'violet umbrellas march north at dawn')).statusCode).toBe(200);
  });
});

describe('per-address throttle', () => {
  it('blocks one address after its budget without blocking another', async () => {
    // Identity's own throttle alone: detection's credential-stuffing block (another suite) would answer first.
    const small = await authApp({ CUSTOS_SIGNIN_IP_LIMIT: '20', CUSTOS_DETECTION: 'false' });
    try {
      const go = (ip: string) =>
        small.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { ...SAME_ORIGIN, 'x-forwarded-for': ip }, payload: { email: uniqueEmail(), password: 'spray spray spray spray' } });
      const sprayed = tally(await Promise.all(Array.from({ length: 30 }, () => go('198.51.100.9'))));
      expect(sprayed['401 IDENTITY_SIGNIN_FAILED']).toBeLessThanOrEqual(20);
      expect(sprayed['429 IDENTITY_THROTTLED']).toBeGreaterThanOrEqual(10);
      expect((await go('192.0.2.44')).statusCode).toBe(401);
      // An IPv6 attacker cannot escape by rotating through their /64.
      const v6 = tally(await Promise.all(Array.from({ length: 30 }, (_, i) => go(`2001:db8:1:2::${(i + 1).toString(16)}`))));
      expect(v6['429 IDENTITY_THROTTLED']).toBeGreaterThanOrEqual(10);
    } finally {
      await small.close();
    }
  });

  it('one address hammering sign-in cannot spend the global budget: with lowered limits another address still signs in', async () => {
    const small = await authApp({ CUSTOS_SIGNIN_IP_LIMIT: '5', CUSTOS_SIGNIN_GLOBAL_LIMIT: '20', CUSTOS_DETECTION: 'false' });
    try {
      const go = (ip: string, email = uniqueEmail(), password = 'spray spray spray spray') =>
        small.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { ...SAME_ORIGIN, 'x-forwarded-for': ip }, payload: { email, password } });
      const victim = await customer(small);
      // One after another: the property is about the order of the buckets, not about concurrency
      // (40 at once could also meet the bounded queue of password work on a busy machine).
      const answers = [];
      for (let i = 0; i < 40; i++) answers.push(await go('198.51.100.77'));
      const hammered = tally(answers);
      expect(hammered).toEqual({ '401 IDENTITY_SIGNIN_FAILED': 5, '429 IDENTITY_THROTTLED': 35 });
      expect((await go('192.0.2.45', victim, 'violet umbrellas march north at dawn')).statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });
});
