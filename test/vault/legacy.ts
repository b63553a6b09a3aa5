import { seal } from '../../src/crypto/aead.ts';
import { openRecord, parseStored } from '../../src/modules/vault/codec.ts';
import type { Runtime } from '../../src/runtime.ts';

/**
 * Turns records back into the per-field format written before envelopes (`{ e: field → f1 box, p }`,
 * each box's associated data naming collection, field, record and key version), as a database
 * made by an older Custos holds them, and clears the re-sealed mark. For the conversion tests.
 */
export async function toPerFieldFormat(runtime: Runtime, ids?: readonly string[]): Promise<number> {
  const { db } = runtime.store;
  let q = db.selectFrom('records').selectAll();
  if (ids !== undefined) q = q.where('id', 'in', ids);
  const rows = await q.execute();
  for (const row of rows) {
    const dek = (await runtime.keys.dekFor(db, row.subject_id, false))!;
    const place = { collection: row.collection, id: row.id, subjectId: row.subject_id, version: row.version };
    const opened = openRecord(dek, place, parseStored(row.data), true);
    const e: Record<string, string> = {};
    for (const [name, value] of Object.entries(opened.e)) {
      const box = seal(dek.key, Buffer.from(JSON.stringify(value), 'utf8'), `custos:f1|${row.collection}|${name}|${row.id}|${dek.version}`);
      e[name] = `f1.${dek.version}.${box.toString('base64url')}`;
    }
    await db.updateTable('records').set({ data: JSON.stringify({ e, p: opened.p }) }).where('id', '=', row.id).execute();
  }
  await db.deleteFrom('vault_state').where('name', '=', 'resealed').execute();
  return rows.length;
}
