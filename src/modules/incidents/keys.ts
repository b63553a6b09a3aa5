import type { KeyObject } from 'node:crypto';
import { deriveVersions, versionsOf, type KeyVersions } from '../../crypto/key-versions.ts';

/**
 * The incident register's key: the free text of an incident (title, description, consequences,
 * measures) and of its timeline notes may name people, so it is AES-256-GCM at rest (GDPR
 * Art. 32(1)(a)), bound to its row. Derived with HKDF-SHA256 from the staff base key (a service
 * key of its own, wrapped by the root: src/crypto/service-keys.ts) under a label no other key
 * uses, so it shares no key with the staff module's report and reason seals (NIST SP 800-57 Pt 1
 * §5.2: one key, one purpose). Version for version of the staff base key, like the staff seals.
 */
export function deriveIncidentKey(input: { staffBase: KeyObject | KeyVersions }): KeyVersions {
  return deriveVersions(versionsOf(input.staffBase), 'custos/incidents/text-seal/v1');
}

export const incidentAad = (id: string) => `custos:incidents|incidents|${id}`;
export const timelineAad = (incidentId: string, id: string) => `custos:incidents|incident_timeline|${incidentId}|${id}`;
