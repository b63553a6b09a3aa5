import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ConfigError } from '../config/config.ts';
import type { RootKey } from './keyring.ts';

type Pkcs11Module = typeof import('pkcs11js');

export interface Pkcs11Settings {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pinFile: string;
  readonly keyLabel: string;
}

const IV = 12;
const TAG_BITS = 128;

/** One initialization per library in a process (PKCS#11 allows one; several runtimes may share it). */
const libraries = new Map<string, { p11: InstanceType<Pkcs11Module['PKCS11']>; refs: number }>();

const bad = (variable: string, message: string) => new ConfigError(`invalid configuration:\n  ${variable}: ${message}`);

/**
 * The root wrapping key in a PKCS#11 HSM (tested against SoftHSM2): an AES-256 key generated in the
 * token as sensitive and not extractable, so it never leaves the device; KEKs and service keys are
 * wrapped and unwrapped by AES-256-GCM inside the token (random 96-bit IV from this process, 128-bit
 * tag, the same associated data as a software root). `pkcs11js` is an optional dependency, loaded
 * only here. The key is found by its label; when it is missing it is generated only if `mayCreate`
 * (an empty database), otherwise start-up stops naming CUSTOS_PKCS11_KEY_LABEL, as it stops naming
 * CUSTOS_PKCS11_MODULE for a library that does not load, CUSTOS_PKCS11_TOKEN_LABEL for a token that
 * is not there and CUSTOS_PKCS11_PIN_FILE for a PIN that does not log in.
 */
export function openPkcs11Root(settings: Pkcs11Settings, mayCreate: boolean): { root: RootKey; close(): void } {
  let lib: Pkcs11Module;
  try {
    lib = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
  } catch {
    throw bad('CUSTOS_PKCS11_MODULE', 'the optional dependency pkcs11js is not installed (npm install pkcs11js; it builds with a C++ compiler)');
  }
  const shared = libraries.get(settings.module);
  let p11: InstanceType<Pkcs11Module['PKCS11']>;
  if (shared !== undefined) {
    p11 = shared.p11;
    shared.refs += 1;
  } else {
    p11 = new lib.PKCS11();
    try {
      p11.load(settings.module);
    } catch {
      throw bad('CUSTOS_PKCS11_MODULE', `cannot load the PKCS#11 library ${settings.module}`);
    }
    try {
      p11.C_Initialize();
    } catch (error) {
      if ((error as { code?: number }).code !== lib.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw bad('CUSTOS_PKCS11_MODULE', `the PKCS#11 library ${settings.module} did not initialize`);
    }
    libraries.set(settings.module, { p11, refs: 1 });
  }
  const release = () => {
    const entry = libraries.get(settings.module);
    if (entry === undefined || --entry.refs > 0) return;
    libraries.delete(settings.module);
    try {
      p11.C_Finalize();
    } catch {
      // a library that went away: nothing left to release
    }
  };
  try {
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === settings.tokenLabel);
    if (slot === undefined) throw bad('CUSTOS_PKCS11_TOKEN_LABEL', 'no token with that label in the HSM');
    let pin: string;
    try {
      pin = readFileSync(settings.pinFile, 'utf8').trim();
    } catch {
      throw bad('CUSTOS_PKCS11_PIN_FILE', `cannot read ${settings.pinFile}`);
    }
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    try {
      p11.C_Login(session, lib.CKU_USER, pin);
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === lib.CKR_PIN_INCORRECT || code === lib.CKR_PIN_INVALID || code === lib.CKR_PIN_LEN_RANGE) throw bad('CUSTOS_PKCS11_PIN_FILE', 'the HSM refused the PIN');
      if (code === lib.CKR_PIN_LOCKED) throw bad('CUSTOS_PKCS11_PIN_FILE', 'the token PIN is locked');
      if (code !== lib.CKR_USER_ALREADY_LOGGED_IN) throw bad('CUSTOS_PKCS11_PIN_FILE', 'login to the HSM token failed');
    }
    p11.C_FindObjectsInit(session, [
      { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
      { type: lib.CKA_LABEL, value: settings.keyLabel },
    ]);
    let key = p11.C_FindObjects(session);
    p11.C_FindObjectsFinal(session);
    if (key === null) {
      if (!mayCreate) throw bad('CUSTOS_PKCS11_KEY_LABEL', 'no key with that label in the token, and this database has keys wrapped by one');
      key = p11.C_GenerateKey(session, { mechanism: lib.CKM_AES_KEY_GEN }, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
        { type: lib.CKA_VALUE_LEN, value: 32 },
        { type: lib.CKA_TOKEN, value: true },
        { type: lib.CKA_PRIVATE, value: true },
        { type: lib.CKA_SENSITIVE, value: true },
        { type: lib.CKA_EXTRACTABLE, value: false },
        { type: lib.CKA_ENCRYPT, value: true },
        { type: lib.CKA_DECRYPT, value: true },
        { type: lib.CKA_LABEL, value: settings.keyLabel },
        { type: lib.CKA_ID, value: randomBytes(16) },
      ]);
    }
    const handle = key;
    const [idAttr] = p11.C_GetAttributeValue(session, handle, [{ type: lib.CKA_ID }]);
    const id = Buffer.isBuffer(idAttr?.value) ? idAttr.value.toString('hex') : '';
    const kid = `p11-${id.slice(0, 16) || settings.keyLabel}`;
    const gcm = (iv: Buffer, aad: string) => ({
      mechanism: lib.CKM_AES_GCM,
      parameter: { type: lib.CK_PARAMS_AES_GCM, iv, aad: Buffer.from(aad, 'utf8'), ivBits: IV * 8, tagBits: TAG_BITS },
    });
    const root: RootKey = {
      kid,
      wrap(raw, aad) {
        const iv = randomBytes(IV);
        p11.C_EncryptInit(session, gcm(iv, aad), handle);
        const out = p11.C_Encrypt(session, raw, Buffer.alloc(raw.length + TAG_BITS / 8));
        return Buffer.concat([iv, out]).toString('base64url');
      },
      unwrap(wrapped, aad) {
        const box = Buffer.from(wrapped, 'base64url');
        if (box.length < IV + TAG_BITS / 8) return undefined;
        try {
          p11.C_DecryptInit(session, gcm(box.subarray(0, IV), aad), handle);
          return Buffer.from(p11.C_Decrypt(session, box.subarray(IV), Buffer.alloc(box.length)));
        } catch {
          return undefined;
        }
      },
    };
    return {
      root,
      close() {
        try {
          p11.C_CloseSession(session);
        } catch {
          // closing a session of a token that went away: nothing left to release
        }
        release();
      },
    };
  } catch (error) {
    release();
    if (error instanceof ConfigError) throw error;
    throw bad('CUSTOS_PKCS11_MODULE', `the HSM failed: ${(error as Error).message}`);
  }
}
