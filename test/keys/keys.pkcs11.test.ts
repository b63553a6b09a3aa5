import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { rotateRoot } from '../../src/crypto/key-lifecycle.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { TEST_DIALECT, testDatabase, type TestDatabase } from '../support/store.ts';
import { childEnv, killChildren, runCli, tempDir } from '../resilience/harness.ts';
import { SEED_ACTOR, seedCustomers, type SeededCustomer } from '../resilience/seed.ts';

/**
 * The root wrapping key in a PKCS#11 HSM, against SoftHSM2 (Debian package softhsm2, installed by
 * .ci/run). The key is generated in the token as sensitive and not extractable; KEKs and service
 * keys are wrapped by it; a restart finds it by its label. Start-up stops with exit code 78 and a
 * message naming the variable for a wrong PIN, a library that does not load, and a key label
 * that is gone from the token while the database has keys wrapped by it.
 */
const MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((f) => existsSync(f));
const TOKEN = 'custos-test';
const PIN = '246810';

type P11 = typeof import('pkcs11js');

describe.skipIf(MODULE === undefined)(`PKCS#11 root key in SoftHSM2 (${TEST_DIALECT})`, () => {
  let dir: string;
  let db: TestDatabase;
  let env: Record<string, string>;
  const ctx = { actor: SEED_ACTOR, purpose: 'account', requestId: 'hsm' };

  beforeAll(() => {
    dir = tempDir('custos-hsm-');
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    // SoftHSM reads its configuration from SOFTHSM2_CONF when the library initialises.
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--pin', PIN, '--so-pin', '13579'], { env: process.env, stdio: 'ignore' });
    const pinDir = tempDir('custos-hsm-pin-');
    writeFileSync(join(pinDir, 'pin'), `${PIN}\n`, { mode: 0o600 });
    writeFileSync(join(pinDir, 'wrong-pin'), '111111\n', { mode: 0o600 });
    db = testDatabase();
    env = {
      ...db.env,
      SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
      CUSTOS_PKCS11_MODULE: MODULE!,
      CUSTOS_PKCS11_TOKEN_LABEL: TOKEN,
      CUSTOS_PKCS11_PIN_FILE: join(pinDir, 'pin'),
      CUSTOS_PKCS11_KEY_LABEL: 'custos-root',
    };
  });
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  const open = (e: Record<string, string>): Promise<Runtime> => openRuntime(loadConfig(e), { background: false, logger: createLogger('silent') });
  const cli = (args: string[], e: Record<string, string>) => runCli(args, childEnv(db, { ...e, CUSTOS_LOG_LEVEL: 'warn' }));

  /** The token's view of a key, through its own session (what an attacker with the PIN could ask for). */
  function inspectKey(label: string): { found: boolean; sensitive?: boolean; extractable?: boolean; valueReadable?: boolean } {
    const lib = createRequire(import.meta.url)('pkcs11js') as P11;
    const p11 = new lib.PKCS11();
    p11.load(MODULE!);
    try {
      p11.C_Initialize();
    } catch {
      // already initialised by a runtime of this process
    }
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === TOKEN)!;
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    try {
      try {
        p11.C_Login(session, lib.CKU_USER, PIN);
      } catch {
        // already logged in
      }
      p11.C_FindObjectsInit(session, [{ type: lib.CKA_LABEL, value: label }]);
      const key = p11.C_FindObjects(session);
      p11.C_FindObjectsFinal(session);
      if (key === null) return { found: false };
      const [sensitive, extractable] = p11.C_GetAttributeValue(session, key, [{ type: lib.CKA_SENSITIVE }, { type: lib.CKA_EXTRACTABLE }]);
      let valueReadable = true;
      try {
        p11.C_GetAttributeValue(session, key, [{ type: lib.CKA_VALUE }]);
      } catch {
        valueReadable = false;
      }
      const bool = (a: { value?: unknown } | undefined) => Buffer.isBuffer(a?.value) && a.value[0] === 1;
      return { found: true, sensitive: bool(sensitive), extractable: bool(extractable), valueReadable };
    } finally {
      p11.C_CloseSession(session);
    }
  }

  function destroyKey(label: string): void {
    const lib = createRequire(import.meta.url)('pkcs11js') as P11;
    const p11 = new lib.PKCS11();
    p11.load(MODULE!);
    try {
      p11.C_Initialize();
    } catch {
      // already initialised
    }
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === TOKEN)!;
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    try {
      p11.C_Login(session, lib.CKU_USER, PIN);
    } catch {
      // already logged in
    }
    p11.C_FindObjectsInit(session, [{ type: lib.CKA_LABEL, value: label }]);
    const key = p11.C_FindObjects(session);
    p11.C_FindObjectsFinal(session);
    if (key !== null) p11.C_DestroyObject(session, key);
    p11.C_CloseSession(session);
  }

  let customer: SeededCustomer;

  it('generates the root wrapping key in the token (sensitive, not extractable) and wraps the KEKs and service keys with it', async () => {
    const r = await open(env);
    try {
      customer = (await seedCustomers(r, 1, 'hsm', 1))[0]!;
      expect(r.ring.current().kid).toMatch(/^p11-/);
      const kids = new Set((await r.store.db.selectFrom('keks').select('root_kid').execute()).map((k) => k.root_kid));
      const serviceKids = new Set((await r.store.db.selectFrom('service_keys').select('root_kid').execute()).map((k) => k.root_kid));
      expect(kids).toEqual(new Set([r.ring.current().kid]));
      expect(serviceKids).toEqual(new Set([r.ring.current().kid]));
    } finally {
      await r.close();
    }
    expect(inspectKey('custos-root')).toEqual({ found: true, sensitive: true, extractable: false, valueReadable: false });
  });

  it('a restart finds the key by its label and every record reads', async () => {
    const r = await open(env);
    try {
      const view = await r.vault.readCustomer(ctx, customer.id);
      expect(view.email).toBe(customer.values.email);
    } finally {
      await r.close();
    }
  });

  it('a wrong PIN stops start-up with exit 78 naming CUSTOS_PKCS11_PIN_FILE', async () => {
    const result = await cli(['keys', 'status'], { ...env, CUSTOS_PKCS11_PIN_FILE: env.CUSTOS_PKCS11_PIN_FILE!.replace(/pin$/, 'wrong-pin') });
    expect(result.code, result.stderr).toBe(78);
    expect(result.stderr).toContain('CUSTOS_PKCS11_PIN_FILE');
    expect(result.stdout).toBe('');
  });

  it('a PKCS#11 library that does not load stops start-up with exit 78 naming CUSTOS_PKCS11_MODULE', async () => {
    const result = await cli(['keys', 'status'], { ...env, CUSTOS_PKCS11_MODULE: join(dir, 'no-such-library.so') });
    expect(result.code, result.stderr).toBe(78);
    expect(result.stderr).toContain('CUSTOS_PKCS11_MODULE');
  });

  it('moves a software root into the HSM: rotate --root with the old root as CUSTOS_ROOT_KEY_PREVIOUS', async () => {
    const other = testDatabase();
    try {
      const soft = randomBytes(32).toString('base64');
      const first = await open({ ...other.env, CUSTOS_ROOT_KEY: soft });
      const [c] = await seedCustomers(first, 1, 'into-hsm', 1);
      await first.close();
      const hsmEnv = { ...env, ...other.env, CUSTOS_PKCS11_KEY_LABEL: 'custos-root-moved', CUSTOS_ROOT_KEY_PREVIOUS: soft };
      const during = await open(hsmEnv);
      await rotateRoot({ db: during.store.db, keys: during.keys, ring: during.ring }, 10);
      await during.close();
      const { CUSTOS_ROOT_KEY_PREVIOUS: _gone, ...hsmOnly } = hsmEnv;
      const after = await open(hsmOnly);
      try {
        expect((await after.vault.readCustomer(ctx, c!.id)).email).toBe(c!.values.email);
      } finally {
        await after.close();
      }
      await expect(open({ ...other.env, CUSTOS_ROOT_KEY: soft })).rejects.toThrow(ConfigError);
    } finally {
      await other.cleanup();
    }
  });

  it('a key label removed from the token stops start-up with exit 78 naming CUSTOS_PKCS11_KEY_LABEL', async () => {
    destroyKey('custos-root');
    expect(inspectKey('custos-root').found).toBe(false);
    const result = await cli(['keys', 'status'], env);
    expect(result.code, result.stderr).toBe(78);
    expect(result.stderr).toContain('CUSTOS_PKCS11_KEY_LABEL');
  });
});
