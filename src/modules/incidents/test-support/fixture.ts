import { versionsOf } from '../../../crypto/key-versions.ts';
import { createSecretKey, randomBytes } from 'node:crypto';
import type { Alert } from '../../detection/contracts.ts';
import { cardBrands } from '../../cards/brands.ts';
import type { Operator } from '../../staff/ports.ts';
import { staffFixture } from '../../staff/test-support/fixture.ts';
import type { KeyFacts } from '../protection.ts';
import { createIncidentReminders } from '../reminders.ts';
import { createIncidentService, type SourceActors } from '../service.ts';

/**
 * The staff fixture (real identity, staff, vault, audit log on the suite's database, a clock that
 * moves only when told) with the incident register over it. Alerts come from a map the test fills
 * (detection's store is another module's), sources from the resolver a test gives.
 */
export async function incidentFixture(options: { keyFacts?: Partial<KeyFacts>; sources?: SourceActors; start?: Date } = {}) {
  const f = await staffFixture(options.start === undefined ? {} : { start: options.start });
  const alerts = new Map<string, Alert>();
  const deps = {
    db: f.db,
    dialect: f.store.dialect,
    clock: f.clock,
    audit: f.audit,
    inventory: f.inventory,
    directory: f.staff.directory,
    key: versionsOf(createSecretKey(randomBytes(32))),
    alerts: { get: async (id: string) => alerts.get(id) },
    reports: f.staff.reports,
    sources: options.sources,
    keyFacts: async (): Promise<KeyFacts> => ({ root_provider: 'env', root_kid: 'root-test', root_beside_database: false, kek_version: 1, keks_under_older_root: 0, ...options.keyFacts }),
    cardBrands: (tokens: readonly string[] | 'all') => cardBrands(f.db, tokens),
    controller: { name: 'Acme Outdoor GmbH', address: 'Hafenstraße 1, 20457 Hamburg', dpoContact: 'dpo@acme.example', privacyContact: undefined },
  };
  const incidents = createIncidentService(deps);
  const reminders = () => createIncidentReminders({ db: f.db, dialect: f.store.dialect, key: deps.key, clock: f.clock, audit: f.audit, notifier: f.staff.notifier });
  /** A security officer (holds incidents.manage), as an operator of the service. */
  async function officer(role = 'security_officer'): Promise<Operator & { id: string; email: string }> {
    const m = await f.member(role);
    return { kind: 'staff', memberId: m.id, mfaVerifiedAt: null, id: m.id, email: m.email };
  }
  return { ...f, incidents, reminders, alerts, deps, officer };
}

export type IncidentFixture = Awaited<ReturnType<typeof incidentFixture>>;
