import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';
import { createTokenService, type TokenService } from './token-service.ts';

let f: IdentityFixture;
let tokens: TokenService;
beforeEach(async () => {
  f = await identityFixture();
  tokens = createTokenService({ db: f.db, clock: f.clock, key: f.keys.tokenMac });
});
afterEach(() => f.close());

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}

describe('one-time links (email verification, password reset)', () => {
  it('issues a 256-bit secret, stores only its keyed hash, and works exactly once', async () => {
    const account = await f.account();
    const issued = await tokens.issue(account.id, 'verify_email');
    const token = issued.token.reveal();
    expect(String(issued.token)).toBe('[redacted]');
    expect(token).toMatch(/^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    const row = await f.db.selectFrom('identity_tokens').selectAll().executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(token.split('.')[1]);
    expect(await tokens.consume('verify_email', issued.token)).toEqual({ accountId: account.id });
    expect(await code(tokens.consume('verify_email', issued.token))).toBe('IDENTITY_TOKEN_REUSED');
  });

  it('expires: reset after 30 minutes, verification after 24 hours', async () => {
    const account = await f.account();
    const reset = await tokens.issue(account.id, 'reset_password');
    const verify = await tokens.issue(account.id, 'verify_email');
    expect(reset.expires_at).toBe(new Date(f.clock.now().getTime() + 30 * 60_000).toISOString());
    f.clock.advance(30 * 60_000);
    expect(await code(tokens.consume('reset_password', reset.token))).toBe('IDENTITY_TOKEN_INVALID');
    f.clock.advance(23 * 3_600_000 + 29 * 60_000);
    expect(await code(tokens.consume('verify_email', verify.token))).toBe('ok');
    const late = await tokens.issue(account.id, 'verify_email');
    f.clock.advance(24 * 3_600_000);
    expect(await code(tokens.consume('verify_email', late.token))).toBe('IDENTITY_TOKEN_INVALID');
  });

  it('refuses forged, altered, malformed and wrong-purpose links', async () => {
    const account = await f.account();
    const issued = await tokens.issue(account.id, 'reset_password');
    const [id, secret] = issued.token.reveal().split('.') as [string, string];
    const flipped = `${secret.slice(0, 10)}${secret[10] === 'A' ? 'B' : 'A'}${secret.slice(11)}`;
    expect(await code(tokens.consume('reset_password', new Secret(`${id}.${flipped}`)))).toBe('IDENTITY_TOKEN_INVALID');
    const forged = `${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    expect(await code(tokens.consume('reset_password', new Secret(forged)))).toBe('IDENTITY_TOKEN_INVALID');
    expect(await code(tokens.consume('reset_password', new Secret(`${id}.${randomBytes(32).toString('base64url')}`)))).toBe(
      'IDENTITY_TOKEN_INVALID',
    );
    expect(await code(tokens.consume('verify_email', issued.token))).toBe('IDENTITY_TOKEN_INVALID');
    expect(await code(tokens.consume('reset_password', new Secret(`${issued.token.reveal()}x`)))).toBe('IDENTITY_TOKEN_INVALID');
    // None of those attempts used it up.
    expect(await tokens.consume('reset_password', issued.token)).toEqual({ accountId: account.id });
  });

  it('never accepts an arbitrary string', async () => {
    const account = await f.account();
    await tokens.issue(account.id, 'reset_password');
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 80 }), async (raw) => (await code(tokens.consume('reset_password', new Secret(raw)))) === 'IDENTITY_TOKEN_INVALID'),
      { numRuns: 100 },
    );
  });

  it('a new reset link supersedes the older ones; revokeAll revokes the rest', async () => {
    const account = await f.account();
    const first = await tokens.issue(account.id, 'reset_password');
    const second = await tokens.issue(account.id, 'reset_password');
    expect(second.revoked).toBe(1);
    expect(await code(tokens.consume('reset_password', first.token))).toBe('IDENTITY_TOKEN_INVALID');
    const verify = await tokens.issue(account.id, 'verify_email');
    expect(await tokens.revokeAll(account.id)).toBe(2);
    expect(await code(tokens.consume('reset_password', second.token))).toBe('IDENTITY_TOKEN_INVALID');
    expect(await code(tokens.consume('verify_email', verify.token))).toBe('IDENTITY_TOKEN_INVALID');
  });

  it('lets exactly one of ten concurrent uses through', async () => {
    const account = await f.account();
    const issued = await tokens.issue(account.id, 'reset_password');
    const results = await Promise.all(Array.from({ length: 10 }, () => code(tokens.consume('reset_password', issued.token))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'IDENTITY_TOKEN_REUSED')).toHaveLength(9);
  });

  it('sweeps links long expired', async () => {
    const account = await f.account();
    await tokens.issue(account.id, 'reset_password');
    f.clock.advance(8 * 24 * 3_600_000);
    const fresh = await tokens.issue(account.id, 'verify_email');
    expect(await tokens.sweep()).toBe(1);
    expect(await code(tokens.consume('verify_email', fresh.token))).toBe('ok');
  });
});
