import { createSecretKey, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSessionService, type SessionService } from './session-service.ts';
import { createTicketService, type TicketService } from './session-tickets.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';

/**
 * The session store on both databases: tokens never at rest, rotation that kills the old token
 * but keeps the absolute limit, single use of a rotation and of an MFA ticket under races, and a
 * sweep that forgets what is dead.
 */
let f: IdentityFixture;
let sessions: SessionService;
let tickets: TicketService;
beforeEach(async () => {
  f = await identityFixture();
  const key = createSecretKey(randomBytes(32));
  sessions = createSessionService({ db: f.db, clock: f.clock, key });
  tickets = createTicketService({ db: f.db, clock: f.clock, key });
});
afterEach(() => f.close());

const open = async () => {
  const account = await f.account({ password: 'a long enough passphrase here' });
  return { account, ...(await sessions.create({ accountId: account.id, realm: 'customer', device: 'Firefox on Linux', mfaVerified: false })) };
};

describe('session store', () => {
  it('keeps no token at rest, only its keyed hash', async () => {
    const { token } = await open();
    const rows = await f.db.selectFrom('identity_sessions').selectAll().execute();
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(token.reveal());
    expect(dump).not.toContain(token.reveal().slice(3));
    expect(rows[0]?.token_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('rotates to a new token, kills the old one and keeps the absolute limit', async () => {
    const { token, session } = await open();
    f.clock.advance(20 * 60_000);
    const rotated = await sessions.rotate(session, { authenticated: true, mfaVerified: true });
    expect(rotated).toBeDefined();
    expect(rotated!.token.reveal()).not.toBe(token.reveal());
    expect(rotated!.session.expiresAt).toBe(session.expiresAt);
    expect(rotated!.session.mfaVerifiedAt).toBe(f.clock.now().toISOString());
    expect(await sessions.resolve('customer', token.reveal())).toMatchObject({ ok: false, reason: 'unknown' });
    expect(await sessions.resolve('customer', rotated!.token.reveal())).toMatchObject({ ok: true });
  });

  it('lets only one of two racing rotations stand', async () => {
    const { session } = await open();
    const [a, b] = await Promise.all([sessions.rotate(session, {}), sessions.rotate(session, {})]);
    const live = [a, b].filter((r) => r !== undefined);
    expect(live).toHaveLength(1);
    expect(await sessions.resolve('customer', live[0]!.token.reveal())).toMatchObject({ ok: true });
  });

  it('resolves a token only in its own realm', async () => {
    const { token } = await open();
    expect(await sessions.resolve('staff', token.reveal())).toMatchObject({ ok: false, reason: 'unknown' });
  });

  it('uses an MFA ticket once, even when two completions race', async () => {
    const { account } = await open();
    const { ticket } = await tickets.issue(account.id, 'customer');
    const results = await Promise.all([tickets.consume('customer', ticket.reveal()), tickets.consume('customer', ticket.reveal())]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(await tickets.peek('customer', ticket.reveal())).toBeUndefined();
  });

  it('expires a ticket after five minutes or five failures', async () => {
    const { account } = await open();
    const a = (await tickets.issue(account.id, 'customer')).ticket.reveal();
    f.clock.advance(5 * 60_000 + 1);
    expect(await tickets.peek('customer', a)).toBeUndefined();
    const b = (await tickets.issue(account.id, 'customer')).ticket.reveal();
    for (let i = 0; i < 4; i++) await tickets.fail(b);
    expect(await tickets.peek('customer', b)).toBeDefined();
    await tickets.fail(b);
    expect(await tickets.consume('customer', b)).toBeUndefined();
  });

  it('revokes all sessions of one account and no other', async () => {
    const one = await open();
    await sessions.create({ accountId: one.account.id, realm: 'customer', device: 'x', mfaVerified: false });
    const other = await open();
    expect(await sessions.revokeAll(one.account.id, 'password_change')).toBe(2);
    expect(await sessions.resolve('customer', one.token.reveal())).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await sessions.resolve('customer', other.token.reveal())).toMatchObject({ ok: true });
  });

  it('sweeps sessions a day past their end, and dead tickets', async () => {
    const { account } = await open();
    await tickets.issue(account.id, 'customer');
    f.clock.advance(49 * 3_600_000);
    await open();
    expect((await sessions.sweep()) + (await tickets.sweep())).toBe(2);
    const left = await sql<{ n: number }>`SELECT count(*) AS n FROM identity_sessions`.execute(f.db);
    expect(Number(left.rows[0]?.n)).toBe(1);
  });
});
