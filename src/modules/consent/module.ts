import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { Inventory } from '../inventory/index.ts';
import type { ConsentGate } from '../policy/service.ts';
import { createNoticeVersions, purposeContent } from './notice-versions.ts';
import { createDerivedReceiptKeys } from './receipts.ts';
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
  };
}

/** What the generated notice says, in a stable shape (its digest decides when a new version is published). */
export function noticeContent(inventory: Inventory): unknown {
  return {
    purposes: [...inventory.purposes.values()].map((p) => ({ name: p.name, descriptions: p.descriptions, bases: p.bases, saleOrSharing: p.saleOrSharing })),
    collections: [...inventory.collections.values()].map((c) => ({
      name: c.name,
      fields: [...c.fields.values()].map((f) => ({ name: f.name, category: f.category, retention: f.retention, protection: f.protection, purposes: f.purposes })),
    })),
  };
}

export async function openConsent(
  deps: Omit<ConsentDeps, 'notices' | 'receipts' | 'ledgerKey' | 'linkKey'> & { base: KeyObject },
): Promise<ConsentService> {
  const { db, clock, inventory, base } = deps;
  const derive = (label: string) => createSecretKey(Buffer.from(hkdfSync('sha256', base.export(), Buffer.alloc(0), `custos/consent/${label}`, 32)));
  const notices = createNoticeVersions({ db, clock, inventory });
  await notices.sync({ notice: noticeContent(inventory), purposes: purposeContent(inventory) });
  const receipts = createDerivedReceiptKeys({ db, clock, base });
  return createConsentService({ ...deps, notices, receipts, ledgerKey: derive('ledger-mac/v1'), linkKey: derive('links/v1') });
}
