import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { KEYRING_FILE, readRootKeyFile } from '../../crypto/keyring.ts';
import type { Secret } from '../../kernel/secret.ts';
import { failed, lines, pass, warn, type Finding } from './finding.ts';
import { keyStrength, STRONG_KEY } from './key-strength.ts';
import { certificateFiles } from './tls-config.ts';

/**
 * Weak or default secrets: a root key that is not 32 random bytes (all one byte, few distinct
 * bytes, a counting sequence, or printable text — a password, not a key), a shared secret shorter
 * than 32 bytes (Standard Webhooks secrets: `whsec_` + base64), a well-known or short password in a
 * connection URL, a TLS key under 112-bit security (NIST SP 800-57 Part 1 Table 2). Nothing a
 * finding says quotes a secret.
 */
export const MIN_SHARED_SECRET_BYTES = 32;
const MIN_URL_PASSWORD = 12;

/** Passwords that come with images, tutorials and defaults; compared case-insensitively. */
const DEFAULT_PASSWORDS = new Set([
  'postgres', 'password', 'passw0rd', 'admin', 'root', 'toor', 'changeme', 'change-me', 'secret', 'custos', 'redis',
  'default', 'guest', 'test', 'example', 'letmein', 'qwerty', '123456', '12345678', '123456789', 'pass', 'mysecretpassword',
]);

/**
 * Shared secrets held by the configuration that must be long and random (a webhook signing secret,
 * an alert channel's token): each module that adds such a setting names it here, with the length
 * in bytes of each secret it holds (several during a rotation; none when unset). For example, the
 * alert webhook: `{ variable: 'CUSTOS_ALERT_WEBHOOK_SECRET', lengths: (c) => c.alerts.webhook?.keys.reveal().map((k) => k.length) ?? [] }`.
 */
export interface SharedSecret {
  readonly variable: string;
  lengths(config: Config): readonly number[];
}
export const SHARED_SECRETS: readonly SharedSecret[] = [
  // Detection's alert webhook (Standard Webhooks): the configuration takes 24 to 64 bytes; under 32 is weak here.
  { variable: 'CUSTOS_ALERT_WEBHOOK_SECRET', lengths: (c) => c.alerts.webhook?.keys.reveal().map((k) => k.length) ?? [] },
];

/** Why 32 bytes are not a random key, or undefined when nothing says so. */
export function weakKeyReason(key: Buffer): string | undefined {
  if (key.length !== 32) return `${key.length} bytes, not 32`;
  if (key.every((b) => b === key[0])) return 'one byte repeated';
  if (new Set(key).size < 16) return 'too few distinct bytes for random ones';
  if (key.every((b, i) => i === 0 || b === ((key[i - 1]! + 1) & 0xff))) return 'a counting sequence';
  // 32 random bytes are all printable with a chance of about 1 in 10^13: this is a password.
  if (key.every((b) => b >= 0x20 && b <= 0x7e)) return 'printable text (a password), not random bytes';
  return undefined;
}

/** The length in bytes of a shared secret: `whsec_` + base64 decodes, anything else counts as text. */
export function secretBytes(value: string): number {
  if (value.startsWith('whsec_')) return Buffer.from(value.slice('whsec_'.length), 'base64').length;
  return Buffer.byteLength(value, 'utf8');
}

function rootKeys(config: Config): { name: string; key: () => Buffer }[] {
  const root = config.root;
  if (root.kind === 'env') {
    const out = [{ name: 'CUSTOS_ROOT_KEY', key: () => root.key.reveal() }];
    if (root.previous !== undefined) out.push({ name: 'CUSTOS_ROOT_KEY_PREVIOUS', key: () => root.previous!.reveal() });
    return out;
  }
  if (root.kind === 'file') {
    const out = [{ name: 'CUSTOS_ROOT_KEY_FILE', key: () => readRootKeyFile(root.file, 'CUSTOS_ROOT_KEY_FILE') }];
    if (root.previousFile !== undefined) out.push({ name: 'CUSTOS_ROOT_KEY_PREVIOUS_FILE', key: () => readRootKeyFile(root.previousFile!, 'CUSTOS_ROOT_KEY_PREVIOUS_FILE') });
    return out;
  }
  if (root.kind === 'pkcs11' && root.previous !== undefined) return [{ name: 'CUSTOS_ROOT_KEY_PREVIOUS', key: () => root.previous!.reveal() }];
  if (root.kind === 'keyring') {
    const file = join(config.dataDir, KEYRING_FILE);
    if (!existsSync(file)) return [];
    return [{ name: 'the keyring file', key: () => Buffer.from((JSON.parse(readFileSync(file, 'utf8')) as { root_key?: string }).root_key ?? '', 'base64') }];
  }
  return [];
}

function urlPassword(url: string): string | undefined {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? undefined : password;
  } catch {
    return undefined;
  }
}

export function checkSecrets(config: Config, shared: readonly SharedSecret[] = SHARED_SECRETS): Finding {
  const id = 'secrets.weak';
  const failures: string[] = [];
  const warnings: string[] = [];
  for (const { name, key } of rootKeys(config)) {
    let reason: string | undefined;
    try {
      reason = weakKeyReason(key());
    } catch {
      continue; // an unreadable key file is files.permissions' finding, and stops the vault from opening
    }
    if (reason !== undefined) failures.push(`the root key of ${name} is ${reason}`);
  }
  for (const s of shared)
    for (const bytes of s.lengths(config))
      if (bytes < MIN_SHARED_SECRET_BYTES) failures.push(`${s.variable} holds a secret of ${bytes} bytes, under ${MIN_SHARED_SECRET_BYTES}`);
  const urls: [string, Secret<string> | undefined][] = [
    ['DATABASE_URL', config.database.kind === 'postgres' ? config.database.url : undefined],
    ['REDIS_URL', config.redisUrl],
    ['CUSTOS_SMTP_URL', config.smtpUrl],
  ];
  for (const [variable, url] of urls) {
    const password = url === undefined ? undefined : urlPassword(url.reveal());
    if (password === undefined) continue;
    if (DEFAULT_PASSWORDS.has(password.toLowerCase())) failures.push(`${variable} uses a well-known default password`);
    else if (password.length < MIN_URL_PASSWORD) warnings.push(`${variable} uses a password of ${password.length} characters, under ${MIN_URL_PASSWORD}`);
  }
  const tls = certificateFiles(config);
  if (tls !== undefined && existsSync(tls.key)) {
    try {
      const strength = keyStrength(createPrivateKey(readFileSync(tls.key)));
      if (strength.weak) failures.push(`the TLS private key is ${strength.text}`);
    } catch {
      // tls.config names a key file that does not read.
    }
  }
  const fix = `make a new root key (openssl rand -base64 32) and move to it with custos keys rotate --root; shared secrets of ${MIN_SHARED_SECRET_BYTES} random bytes or more (openssl rand -base64 32); long random passwords for the database, Redis and SMTP; a TLS certificate for ${STRONG_KEY}`;
  if (failures.length > 0) return failed(id, lines([...failures, ...warnings]), fix);
  if (warnings.length > 0) return warn(id, lines(warnings), fix);
  return pass(id, 'no weak or default secret found: the root key looks random, connection passwords are not well-known ones, the TLS key is strong enough');
}
