/**
 * A worker thread of the audit tree verifier (verify-tree.ts): opens its own connection to the
 * store and checks the ranges of leaves it is sent (checkLeaves: MAC, entry, leaf hash), replying
 * with the recomputed leaf hashes of each range or its first fault.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../config/config.ts';
import type { AuditKeys } from '../../crypto/keyring.ts';
import { Secret } from '../../kernel/secret.ts';
import { openStore } from '../../store/database.ts';
import { checkLeaves, type LeafFault } from './verify-leaves.ts';

export type VerifyRequest = { from: number; to: number } | { close: true };
export type VerifyReply = { from: number; hashes: ArrayBuffer } | { from: number; fault: LeafFault } | { from: number; error: string };

/** The store's location as it crosses to the thread (the URL travels revealed, inside this process). */
export type WorkerDatabase = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; schema: string | undefined };

const { database, keys } = workerData as { database: WorkerDatabase; keys: AuditKeys };
const port = parentPort;
if (port === null) throw new Error('verify-worker runs as a worker thread');
const config: Config['database'] =
  database.kind === 'sqlite' ? { kind: 'sqlite', file: database.file } : ({ kind: 'postgres', url: new Secret(database.url), schema: database.schema, poolSize: 1 } as Config['database']);
const store = await openStore(config);

port.on('message', (msg: VerifyRequest) => {
  void (async () => {
    if ('close' in msg) {
      await store.close();
      port.close();
      return;
    }
    try {
      const result = await checkLeaves(store.db, keys, msg.from, msg.to);
      if ('fault' in result) port.postMessage({ from: msg.from, fault: result.fault } satisfies VerifyReply);
      else {
        const ab = result.hashes.buffer.slice(result.hashes.byteOffset, result.hashes.byteOffset + result.hashes.byteLength) as ArrayBuffer;
        port.postMessage({ from: msg.from, hashes: ab } satisfies VerifyReply, [ab]);
      }
    } catch (error) {
      port.postMessage({ from: msg.from, error: String((error as Error).message ?? error) } satisfies VerifyReply);
    }
  })();
});
port.postMessage({ ready: true });
