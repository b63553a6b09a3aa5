/**
 * Test fixture: chains entries the way Custos did before migration 0024 (ADR 0001: each waiting
 * entry rewritten once with seq, prev_hash and hash, a signed checkpoint per pass), so tests can
 * build the databases of earlier versions, whose chained history the tree's leaf 0 carries over
 * and `verifyAuditLog` still checks. The service no longer runs this: it updates entry rows.
 */
import { sql, type Kysely } from 'kysely';
import type { AuditKeys } from '../../../crypto/keyring.ts';
import type { Database } from '../../../store/schema.ts';
import { chainHash, entryText, macMatchesAny, signCheckpoint } from '../canonical.ts';

/** Chains every entry that is neither chained nor refused, in id order; returns how many. */
export async function chainLegacy(db: Kysely<Database>, keys: AuditKeys, at: Date = new Date()): Promise<number> {
  const dialect = db.getExecutor().adapter.constructor.name.startsWith('Postgres') ? 'postgres' : 'sqlite';
  return db.transaction().execute(async (tx) => {
    const head = (await sql<{ seq: number; hash: string }>`UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash`.execute(tx)).rows[0]!;
    const rows = await tx.selectFrom('audit_log').selectAll().where('seq', 'is', null).where('rejected', 'is', null).orderBy('id').execute();
    let seq = Number(head.seq);
    let prev = head.hash;
    const nonces = new Set<string>();
    const chain: [id: number, seq: number, prev: string, hash: string][] = [];
    for (const row of rows) {
      const text = entryText(row);
      const reason = !macMatchesAny(keys, text, row.mac) ? 'mac' : nonces.has(row.nonce) ? 'duplicate' : null;
      if (reason !== null) {
        await tx.updateTable('audit_log').set({ rejected: reason }).where('id', '=', row.id).execute();
        continue;
      }
      nonces.add(row.nonce);
      seq += 1;
      const hash = chainHash(prev, seq, row.id, row.mac, text);
      chain.push([row.id, seq, prev, hash]);
      prev = hash;
    }
    const chained = chain.length;
    // One statement for the lot (as the chainer did), reading the rows from one JSON array.
    const json = JSON.stringify(chain);
    await (dialect === 'postgres'
      ? sql`UPDATE audit_log AS a SET seq = (v.value ->> 1)::bigint, prev_hash = v.value ->> 2, hash = v.value ->> 3 FROM jsonb_array_elements(${json}::jsonb) AS v WHERE a.id = (v.value ->> 0)::bigint`
      : sql`UPDATE audit_log SET seq = v.value ->> 1, prev_hash = v.value ->> 2, hash = v.value ->> 3 FROM json_each(${json}) AS v WHERE audit_log.id = v.value ->> 0`
    ).execute(tx);
    if (chained > 0) {
      const checkpoint = { seq, hash: prev, key_id: keys.auditSigning.keyId, at: at.toISOString() };
      await tx.updateTable('audit_head').set({ seq, hash: prev }).where('id', '=', 1).execute();
      await tx.insertInto('audit_checkpoints').values({ ...checkpoint, signature: signCheckpoint(keys.auditSigning.privateKey, checkpoint) }).execute();
    }
    return chained;
  });
}
