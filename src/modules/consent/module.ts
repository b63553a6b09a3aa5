import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { Inventory } from '../inventory/index.ts';
import type { ConsentGate } from '../policy/service.ts';
import { createNoticeVersions, purposeContent } from './notice-versions.ts';
import { createReceiptKeys } from './receipts.ts';
import { createConsentService, type ConsentDeps, type ConsentService } from './service.ts';

/**
 * The consent capability, wired: owns consent_ledger, consent_notices, consent_purpose_versions
 * and consent_receipt_keys; audit actions consent.grant, consent.withdraw, consent.pending,
 * consent.read; depends on the inventory, the policy (authorisation of callers), the vault
 * (whether a customer exists) and the audit log.
 */
export function consentGateFor(service: () => ConsentService | undefined): ConsentGate {
  return {
    permits: async (subjectId, purpose) => {
      const s = service();
      return s === undefined ? false : s.gate.permits(subjectId, purpose);
    },
    objects: async (subjectId, purpose) => {
      const s = service();
      return s?.gate.objects === undefined ? false : s.gate.objects(subjectId, purpose);
    },
  };
}

/** A recipient as the notice names it (the processor registry's rows fit). */
export interface Recipient {
  readonly name: string;
  readonly role: 'processor' | 'controller';
  readonly purposes: readonly string[];
  readonly categories: readonly string[];
  readonly country: string;
  readonly safeguard: string | null;
}

/** What the generated notice says, in a stable shape (its digest decides when a new version is published). */
export function noticeContent(inventory: Inventory, recipients: readonly Recipient[] = []): unknown {
  return {
    recipients: recipients.map((r) => ({ name: r.name, role: r.role, purposes: r.purposes, categories: r.categories, country: r.country, safeguard: r.safeguard })),
    purposes: [...inventory.purposes.values()].map((p) => ({ name: p.name, descriptions: p.descriptions, bases: p.bases, saleOrSharing: p.saleOrSharing })),
    collections: [...inventory.collections.values()].map((c) => ({
      name: c.name,
      fields: [...c.fields.values()].map((f) => ({ name: f.name, category: f.category, retention: f.retention, protection: f.protection, purposes: f.purposes })),
    })),
  };
}

export interface ConsentModule extends ConsentService {
  /**
   * Publishes a new notice version when the notice changed (after a change of the recipients).
   * Adding a processor changes the notice but no purpose; adding an independent controller as a
   * recipient of a consent-based purpose changes that purpose, voiding its earlier consents.
   */
  republish(): Promise<number>;
}

export async function openConsent(
  deps: Omit<ConsentDeps, 'notices' | 'receipts' | 'ledgerKey' | 'linkKey'> & {
    base: KeyObject;
    /** Every version of the `receipts` service key, newest first: the receipts signing keys (receipts.ts). */
    receiptVersions: readonly { version: number; key: KeyObject }[];
    recipients: () => Promise<readonly Recipient[]>;
  },
): Promise<ConsentModule> {
  const { db, clock, inventory, base } = deps;
  const derive = (label: string) => createSecretKey(Buffer.from(hkdfSync('sha256', base.export(), Buffer.alloc(0), `custos/consent/${label}`, 32)));
  const notices = createNoticeVersions({ db, clock, inventory });
  const republish = async () => {
    const recipients = await deps.recipients();
    const controllersOf = (purpose: string) => recipients.filter((r) => r.role === 'controller' && r.purposes.includes(purpose)).map((r) => r.name);
    return notices.sync({ notice: noticeContent(inventory, recipients), purposes: purposeContent(inventory, controllersOf) });
  };
  await republish();
  const receipts = await createReceiptKeys({ db, versions: deps.receiptVersions, legacyBase: base });
  const service = createConsentService({ ...deps, notices, receipts, ledgerKey: derive('ledger-mac/v1'), linkKey: derive('links/v1') });
  return Object.assign(service, { republish });
}
