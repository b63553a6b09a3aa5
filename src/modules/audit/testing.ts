import { randomBytes, type KeyObject } from 'node:crypto';
import { deriveRootKeys, type RootKeys } from '../../crypto/keyring.ts';
import { systemClock, type Clock } from '../../kernel/clock.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Store } from '../../store/database.ts';
import { createAuditLog, type AuditEntry, type AuditLog } from './service.ts';

/** Helpers for the audit tests (and for tests of modules that write audit entries). */
export function testAuditKeys(rootKey: Buffer = randomBytes(32)): RootKeys & { kekWrap: KeyObject } {
  return deriveRootKeys(new Secret(rootKey));
}

export function sampleEntry(i: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    actor: i % 3 === 0 ? 'staff:stf_support' : `apikey:key_${i % 5}`,
    action: i % 2 === 0 ? 'vault.read' : 'vault.update',
    subjectId: `cus_${i % 7}`,
    collection: 'customers',
    recordId: `cus_${i % 7}`,
    fields: i % 4 === 0 ? [] : ['email', 'address.city'],
    purpose: 'order_fulfilment',
    outcome: i % 11 === 0 ? 'denied' : 'success',
    requestId: `req-${i}`,
    ...overrides,
  };
}

export function testAuditLog(
  store: Pick<Store, 'db' | 'dialect'>,
  keys: RootKeys,
  opts: { flushMs?: number; chainIntervalMs?: number; batchSize?: number; clock?: Clock; sqliteThread?: boolean } = {},
): AuditLog {
  return createAuditLog({
    db: store.db,
    dialect: store.dialect,
    keys,
    clock: opts.clock ?? systemClock,
    flushMs: opts.flushMs ?? 1,
    chainIntervalMs: opts.chainIntervalMs ?? 10,
    // Off unless asked for: starting a thread per test costs more than the test.
    sqliteThread: opts.sqliteThread ?? false,
    ...(opts.batchSize === undefined ? {} : { batchSize: opts.batchSize }),
  });
}
