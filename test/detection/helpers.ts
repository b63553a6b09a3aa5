import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import type { Alert } from '../../src/modules/detection/contracts.ts';
import type { TestApp } from '../support/app.ts';
import { CookieJar, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../identity/helpers.ts';

/**
 * Shared pieces of the detection suites: a rules file with thresholds small enough for a test,
 * requests from a chosen client address (X-Forwarded-For, which the test apps trust from
 * 127.0.0.1), and the alerts as the API answers them.
 */
export const STUFFING_SOURCE = '198.51.100.7';

/** A CUSTOS_DETECTION_RULES file holding `yaml`. */
export function rulesFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'custos-rules-')), 'rules.yaml');
  writeFileSync(file, yaml);
  return file;
}

export const from = (address: string) => ({ 'x-forwarded-for': address });

/** Every alert, newest first, read through the API with a key scoped to `security`. */
export async function alertsOf(t: TestApp, security: string, query = ''): Promise<Alert[]> {
  await t.runtime.detection.settle();
  const res = await t.app.inject({ method: 'GET', url: `/v1/security/alerts${query}`, headers: { authorization: security } });
  if (res.statusCode !== 200) throw new Error(`alerts answered ${res.statusCode}: ${res.body}`);
  return res.json<{ data: Alert[] }>().data;
}

/** Audit entries of `action`, oldest first. */
export async function auditActions(t: TestApp, prefix: string): Promise<{ actor: string; action: string; record_id: string | null; fields: string }[]> {
  await t.runtime.audit.chainPending();
  return t.runtime.store.db
    .selectFrom('audit_log')
    .select(['actor', 'action', 'record_id', 'fields'])
    .where('action', 'like', `${prefix}%`)
    .orderBy('id')
    .execute();
}

/** Whether any audit row holds `text` in any column (the log must hold no client address). */
export async function auditHolds(t: TestApp, text: string): Promise<boolean> {
  await t.runtime.audit.chainPending();
  const rows = await sql<Record<string, unknown>>`SELECT * FROM audit_log`.execute(t.runtime.store.db);
  return rows.rows.some((r) => Object.values(r).some((v) => typeof v === 'string' && v.includes(text)));
}

export const codeOf = (res: LightMyRequestResponse) => res.json<{ error?: { code?: string } }>().error?.code;

/** A signed-in staff member of `role` (training recorded, second factor verified): the cookie jar and the member id. */
export async function staffWithId(t: AuthTest, role: string): Promise<{ jar: CookieJar; memberId: string }> {
  const { email, memberId } = await staffMember(t, role, { trainedOn: t.clock.now().toISOString().slice(0, 10) });
  const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
  await enrolTotp(t, jar, '/v1/staff/auth');
  return { jar, memberId };
}

/** Seeds `days` days of hourly activity before today for `actor`, at the UTC hours given. */
export async function seedActivity(t: TestApp, actor: string, counter: string, hours: readonly number[], n: number, days = 10): Promise<void> {
  const today = Date.parse(`${t.runtime.clock.now().toISOString().slice(0, 10)}T00:00:00Z`);
  const rows = [];
  for (let d = 1; d <= days; d++)
    for (const h of hours) rows.push({ actor, counter, n, hour: new Date(today - d * 86_400_000 + h * 3_600_000).toISOString().slice(0, 13) });
  await t.runtime.store.db.insertInto('detection_activity').values(rows).execute();
}
