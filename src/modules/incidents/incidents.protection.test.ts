import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { loadConfig } from '../../config/config.ts';
import { newId } from '../../kernel/ids.ts';
import type { Actor } from '../policy/service.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { decide, keyFactsOf, NO_EXPOSURE, type Exposure } from './protection.ts';
import { incidentFixture, type IncidentFixture } from './test-support/fixture.ts';

/**
 * GDPR Art. 34(3)(a), decided per field from what the actor was given and from the key state:
 * read in clear → exposed whatever the encryption; stored data reached → plain fields exposed,
 * encrypted ones exposed only if their keys were reachable too (host, disclosed root, or a root
 * key file beside the database); masked → masked; otherwise protected.
 */
const CLEAR = 1;
const MASKED = 2;
const NOT_RELEASED = 4;
const WRITTEN = 8;
const exposure = (e: Partial<Exposure>): Exposure => ({ ...NO_EXPOSURE, ...e });
const apart = { root_beside_database: false };
const beside = { root_beside_database: true };

describe('Art. 34(3)(a) decision', () => {
  it('a field read in clear is exposed, encrypted or not, whatever else happened', () => {
    for (const atRest of ['randomised', 'searchable', 'plain'] as const)
      for (const e of [NO_EXPOSURE, exposure({ database: true }), exposure({ host: true })])
        expect(decide(atRest, CLEAR | MASKED, e, apart)).toMatchObject({ decision: 'exposed', reason: 'read_in_clear', art34_3_a: false });
  });

  it('only the actor compromised: masked reads stay masked, what it never received or only wrote is protected', () => {
    expect(decide('searchable', MASKED, NO_EXPOSURE, apart)).toMatchObject({ decision: 'masked', reason: 'released_masked', art34_3_a: false });
    expect(decide('randomised', NOT_RELEASED, NO_EXPOSURE, apart)).toMatchObject({ decision: 'protected', reason: 'not_released', art34_3_a: true });
    expect(decide('randomised', WRITTEN, NO_EXPOSURE, apart)).toMatchObject({ decision: 'protected', reason: 'written_only', modified: true });
    // A disclosed root key without the data or the host opens nothing by itself.
    expect(decide('randomised', MASKED, exposure({ root_key: true }), apart).decision).toBe('masked');
  });

  it('a database copy: encrypted fields stay protected unless the root key lay beside it; plain fields are exposed', () => {
    const db = exposure({ database: true });
    expect(decide('randomised', 0, db, apart)).toMatchObject({ decision: 'protected', reason: 'encrypted_keys_safe', art34_3_a: true });
    expect(decide('searchable', MASKED, db, apart)).toMatchObject({ decision: 'masked' });
    expect(decide('randomised', 0, db, beside)).toMatchObject({ decision: 'exposed', reason: 'keys_exposed' });
    expect(decide('plain', 0, db, apart)).toMatchObject({ decision: 'exposed', reason: 'stored_in_clear' });
    expect(decide('undeclared', 0, db, apart)).toMatchObject({ decision: 'exposed', reason: 'stored_in_clear' });
    expect(decide('randomised', 0, exposure({ database: true, root_key: true }), apart)).toMatchObject({ decision: 'exposed', reason: 'keys_exposed' });
  });

  it('the host: data keys are in its memory and its root provider unwraps for whoever runs code there, an HSM included', () => {
    expect(decide('randomised', NOT_RELEASED, exposure({ host: true }), apart)).toMatchObject({ decision: 'exposed', reason: 'keys_exposed' });
  });
});

describe('key facts from the configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-keyfacts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const state = { root_kid: 'k', kek_version: 2, keks_under_older_root: 0 };
  const facts = (env: Record<string, string>) => keyFactsOf(loadConfig({ CUSTOS_DATA_DIR: join(dir, 'data'), ...env }, dir), state);

  it('the embedded keyring lies beside a SQLite database in the data folder, and not beside a PostgreSQL one', () => {
    expect(facts({})).toMatchObject({ root_provider: 'keyring', root_beside_database: true });
    expect(facts({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' })).toMatchObject({ root_provider: 'keyring', root_beside_database: false });
  });

  it('an environment root, an HSM, and a root key file outside the data folder are not beside the database; one beside the SQLite file is', () => {
    expect(facts({ CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') })).toMatchObject({ root_provider: 'env', root_beside_database: false });
    expect(facts({ CUSTOS_ROOT_KEY_FILE: join(dir, 'secrets', 'root.key') })).toMatchObject({ root_provider: 'file', root_beside_database: false });
    expect(facts({ CUSTOS_ROOT_KEY_FILE: join(dir, 'db', 'root.key'), DATABASE_URL: `sqlite:${join(dir, 'db', 'custos.db')}` })).toMatchObject({ root_beside_database: true });
    expect(
      facts({ CUSTOS_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so', CUSTOS_PKCS11_TOKEN_LABEL: 'custos', CUSTOS_PKCS11_PIN_FILE: join(dir, 'pin') }),
    ).toMatchObject({ root_provider: 'pkcs11', root_beside_database: false });
  });
});

describe(`Art. 34(3)(a) in the blast radius (${TEST_DIALECT})`, () => {
  let f: IncidentFixture;
  let customer: string;
  const key: Actor = { ref: `apikey:${newId('key')}`, kind: 'apikey', purposes: ['support'] };
  beforeAll(async () => {
    f = await incidentFixture();
    customer = await f.customer();
    await f.vault.readCustomer({ actor: key, purpose: 'support', requestId: 'r' }, customer);
    f.clock.advance(1000);
  });
  afterAll(() => f?.close());

  const radius = async (e: Partial<Exposure>) => {
    const incident = await f.incidents.open(CLI_OPERATOR, {
      title: 'Support key leaked',
      severity: 'high',
      scope: { actor: { kind: 'apikey', id: key.ref.slice('apikey:'.length) }, from: new Date(f.clock.now().getTime() - 60_000).toISOString() },
      exposure: e,
    });
    return f.incidents.blastRadius(CLI_OPERATOR, incident.id);
  };

  it('names every declared field when the database was copied, and says all stored customers are concerned when plain fields lie open', async () => {
    const actorOnly = await radius({});
    // Support was given name in clear, email and phone masked; the default customer has no locale.
    expect(actorOnly.fields.map((x) => [`${x.collection}.${x.field}`, x.decision])).toEqual([
      ['customers.email', 'masked'],
      ['customers.name', 'exposed'],
      ['customers.phone', 'masked'],
    ]);
    expect(actorOnly.all_stored_customers).toBe(false);
    const copied = await radius({ database: true });
    const byName = Object.fromEntries(copied.fields.map((x) => [`${x.collection}.${x.field}`, x]));
    expect(byName['customers.date_of_birth']).toMatchObject({ entries: 0, decision: 'protected', reason: 'encrypted_keys_safe' });
    expect(byName['customers.email']).toMatchObject({ decision: 'masked' });
    expect(byName['orders.status']).toMatchObject({ at_rest: 'plain', decision: 'exposed', reason: 'stored_in_clear' });
    expect(byName['cards.pan']).toMatchObject({ decision: 'protected' });
    expect(copied.all_stored_customers).toBe(true);
    expect(copied.keys).toMatchObject({ root_provider: 'env', root_beside_database: false });
  });

  it('a host compromise exposes even what the actor never saw', async () => {
    const host = await radius({ host: true });
    expect(host.fields.find((x) => x.field === 'date_of_birth')).toMatchObject({ decision: 'exposed', reason: 'keys_exposed' });
    expect(host.customers[0]).toMatchObject({ customer_id: customer, art34_3_a: false });
  });
});
