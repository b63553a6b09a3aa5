import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { RootRing } from '../../crypto/keyring.ts';
import { loadServiceKeys, rotateServiceKey, type ServiceKeySet } from '../../crypto/service-keys.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';

/**
 * The card vault's keys: service keys of their own, separate from customer data keys (PCI DSS
 * 3.6.1: keys protecting card data used for nothing else), each versioned and wrapped by the root
 * (src/crypto/service-keys.ts), so a root rotation re-wraps them. `card-vault` seals PANs
 * (AES-256-GCM); `card-index` keys the PAN hash of deterministic mode (PCI DSS 3.5.1.1). A version
 * this process does not hold (another process rotated) is loaded from the database on first use.
 */
export interface CardKeys {
  current(): { version: number; key: KeyObject };
  vault(version: number): Promise<KeyObject | undefined>;
  /** Every card-index version, newest first. */
  index(): readonly { version: number; key: KeyObject }[];
  /** Loads the versions stored since this process started. */
  reload(): Promise<void>;
  /** Adds a card-vault and a card-index version; the caller re-seals (`reseal`). */
  rotate(): Promise<{ vault: number; index: number }>;
}

type Versions = readonly { version: number; key: KeyObject }[];

export function createCardKeys(deps: { db: Kysely<Database>; ring: RootRing; clock: Clock; initial: ServiceKeySet }): CardKeys {
  let vault: Versions = [];
  let index: Versions = [];
  const take = (set: ServiceKeySet) => {
    vault = set.versions.get('card-vault') ?? [];
    index = set.versions.get('card-index') ?? [];
  };
  take(deps.initial);
  const reload = async () => take(await loadServiceKeys(deps.db, deps.ring, deps.clock));
  return {
    current: () => vault[0]!,
    async vault(version) {
      let hit = vault.find((v) => v.version === version);
      if (hit === undefined) {
        await reload();
        hit = vault.find((v) => v.version === version);
      }
      return hit?.key;
    },
    index: () => index,
    reload,
    async rotate() {
      const v = await rotateServiceKey(deps.db, deps.ring, deps.clock, 'card-vault');
      const i = await rotateServiceKey(deps.db, deps.ring, deps.clock, 'card-index');
      await reload();
      return { vault: v, index: i };
    },
  };
}
