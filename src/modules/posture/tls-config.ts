import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { TLS_OPTIONS } from '../../http/tls.ts';
import { daysBetween, failed, pass, warn, type Finding } from './finding.ts';

/**
 * The server's own TLS configuration, read from its settings and certificate file (no network):
 * whether it serves TLS at all, whose certificate, and until when. The protocol floor and the
 * cipher suites are fixed in code (src/http/tls.ts: TLS 1.2 and 1.3, AEAD suites only; ASVS 5.0
 * 12.1.1). The self-signed certificate of the embedded default fails (`--ci`: warns): no client
 * can verify it.
 */
const ID = 'tls.config';
/** Renew a certificate at the latest this many days before it expires. */
export const CERT_NOTICE_DAYS = 30;

export const TLS_FLOOR = `${TLS_OPTIONS.minVersion.replace('TLSv', 'TLS ')}+ with AEAD suites only`;
const FIX_CERT = 'set CUSTOS_TLS_CERT and CUSTOS_TLS_KEY to a certificate from a CA your clients trust (or end TLS at a proxy: CUSTOS_PLAIN_HTTP with CUSTOS_TRUST_PROXY)';

/** The certificate files the server serves: the shop's, or the self-signed one in DATA_DIR. */
export function certificateFiles(config: Config): { cert: string; key: string; variable: string } | undefined {
  if (config.tls.mode === 'off') return undefined;
  if (config.tls.mode === 'files') return { cert: config.tls.cert, key: config.tls.key, variable: 'CUSTOS_TLS_CERT' };
  return { cert: join(config.dataDir, 'tls-cert.pem'), key: join(config.dataDir, 'tls-key.pem'), variable: 'the self-signed certificate in CUSTOS_DATA_DIR' };
}

export function checkTlsConfig(config: Config, options: { now: Date; probing: boolean }): Finding {
  const files = certificateFiles(config);
  if (files === undefined) {
    return options.probing
      ? pass(ID, `plain HTTP behind the trusted proxy (CUSTOS_TRUST_PROXY): TLS ends there and is probed at the URL given`)
      : warn(ID, 'plain HTTP behind the trusted proxy (CUSTOS_TRUST_PROXY): TLS ends there and was not checked', "run custos doctor --url https://<the proxy's public address> to probe it");
  }
  const selfSigned = config.tls.mode === 'self-signed';
  if (!existsSync(files.cert)) {
    return selfSigned
      ? warn(ID, 'no certificate yet: the server makes a self-signed one on its first start', `start the server once, then check again; for production ${FIX_CERT}`)
      : failed(ID, `the certificate file of CUSTOS_TLS_CERT does not exist`, 'point CUSTOS_TLS_CERT at the PEM certificate file (full chain)');
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(files.cert));
  } catch {
    return failed(ID, `${files.variable} is not a readable PEM certificate`, 'point CUSTOS_TLS_CERT at the PEM certificate file (full chain)');
  }
  const until = new Date(cert.validTo);
  const left = daysBetween(options.now, until);
  const day = until.toISOString().slice(0, 10);
  const renew = selfSigned ? 'delete tls-cert.pem and tls-key.pem in CUSTOS_DATA_DIR and restart (a new self-signed one is made), or ' + FIX_CERT : 'renew the certificate, replace the files and restart';
  if (left < 0) return failed(ID, `the certificate (${files.variable}) expired on ${day}`, renew);
  const keyFile = files.key;
  if (existsSync(keyFile)) {
    try {
      if (!cert.checkPrivateKey(createPrivateKey(readFileSync(keyFile)))) return failed(ID, 'the private key does not belong to the certificate', 'give CUSTOS_TLS_KEY the key the certificate was issued for');
    } catch {
      return failed(ID, 'the TLS private key file is not a readable PEM key', 'give CUSTOS_TLS_KEY the PEM private key of the certificate');
    }
  } else return failed(ID, 'the TLS private key file does not exist', 'give CUSTOS_TLS_KEY the PEM private key of the certificate');
  if (selfSigned) return failed(ID, `self-signed certificate of the embedded default (until ${day}): clients cannot verify it`, FIX_CERT, { ciWarn: true });
  if (left <= CERT_NOTICE_DAYS) return warn(ID, `the certificate expires on ${day}, in ${left} days`, renew);
  if (cert.issuer === cert.subject && cert.verify(cert.publicKey))
    return warn(ID, `self-signed certificate from CUSTOS_TLS_CERT (until ${day}): only clients that pin it can verify it`, 'use a certificate from a CA your clients trust, unless every client pins this one');
  return pass(ID, `HTTPS with the certificate of CUSTOS_TLS_CERT until ${day} (${left} days); ${TLS_FLOOR}`);
}
