import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';

/**
 * The incident register's key: the free text of an incident (title, description, consequences,
 * measures) and of its timeline notes may name people, so it is AES-256-GCM at rest (GDPR
 * Art. 32(1)(a)), bound to its row. Derived with HKDF-SHA256 from the staff base key (a service
 * key of its own, wrapped by the root: src/crypto/service-keys.ts) under a label no other key
 * uses, so it shares no key with the staff module's report and reason seals (NIST SP 800-57 Pt 1
 * §5.2: one key, one purpose).
 */
export function deriveIncidentKey(input: { staffBase: KeyObject }): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', input.staffBase, Buffer.alloc(0), 'custos/incidents/text-seal/v1', 32)));
}

export const incidentAad = (id: string) => `custos:incidents|incidents|${id}`;
export const timelineAad = (incidentId: string, id: string) => `custos:incidents|incident_timeline|${incidentId}|${id}`;
