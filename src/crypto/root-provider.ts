import type { Config } from '../config/config.ts';
import { envRootRing, fileRootRing, keyringFileRing, softwareRoot, type RootKey, type RootRing } from './keyring.ts';
import { openPkcs11Root } from './pkcs11.ts';

/**
 * The root ring of the configured provider. During a root rotation the provider presents the old
 * root beside the new one: the keyring file keeps it under `previous`; CUSTOS_ROOT_KEY and
 * CUSTOS_ROOT_KEY_FILE take it from CUSTOS_ROOT_KEY_PREVIOUS and CUSTOS_ROOT_KEY_PREVIOUS_FILE; an
 * HSM root takes the old software root (moving into an HSM) from CUSTOS_ROOT_KEY_PREVIOUS.
 * `mayCreate`: the database holds no keys yet (an HSM then generates its key when missing).
 */
export function openRootRing(config: Config, mayCreate: boolean): { ring: RootRing; close(): void } {
  const root = config.root;
  if (root.kind === 'env') return { ring: envRootRing(root.key, root.previous), close: () => undefined };
  if (root.kind === 'file') return { ring: fileRootRing(root.file, root.previousFile), close: () => undefined };
  if (root.kind === 'keyring') return { ring: keyringFileRing(config.dataDir), close: () => undefined };
  // Moving a software root into the HSM (the old root given as previous) also generates the key.
  const hsm = openPkcs11Root(root, mayCreate || root.previous !== undefined);
  const previous: RootKey[] = root.previous === undefined ? [] : [softwareRoot(root.previous.reveal())];
  const all = new Map([hsm.root, ...previous].map((r) => [r.kid, r]));
  return {
    ring: {
      name: `PKCS#11 token ${root.tokenLabel}`,
      variable: 'CUSTOS_PKCS11_KEY_LABEL',
      current: () => hsm.root,
      previous: () => previous,
      byKid: (kid) => all.get(kid),
      reload: () => undefined,
    },
    close: hsm.close,
  };
}
