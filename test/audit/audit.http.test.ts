/**
 * GET /v1/keys/audit (no authentication) and GET /v1/audit/consistency (an authenticated caller):
 * a caller who kept an older signed head checks, with the published key, that the newer head
 * extends it.
 */
import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyConsistency } from '../../src/modules/audit/merkle.ts';
import { sampleEntry } from '../../src/modules/audit/testing.ts';
import { treeHeadSignatureValid, type SignedTreeHead } from '../../src/modules/audit/tree-head.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { apiKey, call, expectError } from '../vault/helpers.ts';

let t: TestApp;
let auth: string;
let older: SignedTreeHead;

beforeAll(async () => {
  t = await testApp();
  auth = (await apiKey(t, ['support'])).auth;
  await t.runtime.audit.chainPending();
  for (let i = 0; i < 4; i++) await t.runtime.audit.append(sampleEntry(i));
  await t.runtime.audit.chainPending();
  older = (await t.runtime.store.db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size', 'desc').executeTakeFirstOrThrow()) as SignedTreeHead;
  older = { ...older, tree_size: Number(older.tree_size) };
  for (let i = 4; i < 11; i++) await t.runtime.audit.append(sampleEntry(i));
  await t.runtime.audit.chainPending();
});
afterAll(() => t.close());

describe(`audit keys and consistency over HTTP (${TEST_DIALECT})`, () => {
  it('publishes the signing key with no authentication; a head verifies under the kid it names', async () => {
    const res = await call(t, { url: '/v1/keys/audit' });
    expect(res.statusCode).toBe(200);
    const set = res.json() as { keys: { kid: string; x: string; crv: string; kty: string }[] };
    const jwk = set.keys.find((k) => k.kid === older.key_id);
    expect(jwk).toBeDefined();
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk?.x ?? '' }, format: 'jwk' });
    expect(treeHeadSignatureValid(key, older)).toBe(true);
  });

  it('answers a consistency proof from an older head to the newest, which verifies', async () => {
    const res = await call(t, { url: `/v1/audit/consistency?first=${older.tree_size}&second=12`, auth });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { consistency_path: string[]; head: SignedTreeHead };
    expect(body.head.tree_size).toBe(12);
    const ok = verifyConsistency(older.tree_size, 12, Buffer.from(older.root_hash, 'hex'), Buffer.from(body.head.root_hash, 'hex'), body.consistency_path.map((h) => Buffer.from(h, 'hex')));
    expect(ok).toBe(true);
  });

  it('refuses a consistency proof to an anonymous caller and sizes beyond the signed tree', async () => {
    expect((await call(t, { url: '/v1/audit/consistency?first=1&second=2' })).statusCode).toBe(401);
    expectError(await call(t, { url: '/v1/audit/consistency?first=3&second=13', auth }), 400, 'AUDIT_QUERY_INVALID');
    expectError(await call(t, { url: '/v1/audit/consistency?first=5&second=3', auth }), 400, 'AUDIT_QUERY_INVALID');
  });
});
