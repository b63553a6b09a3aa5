import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, type PeerCertificate, type SecureVersion } from 'node:tls';
import { daysBetween, failed, pass, warn, type Finding } from './finding.ts';
import { keyStrength, STRONG_KEY } from './key-strength.ts';
import { CERT_NOTICE_DAYS } from './tls-config.ts';

/**
 * Probes a running server (or the proxy in front of it) over the network, as a client would:
 * - `tls.protocols`: which of TLS 1.0, 1.1, 1.2, 1.3 it accepts — 1.2 and 1.3 only (ASVS 5.0 12.1.1);
 * - `tls.ciphers`: whether TLS 1.2 accepts a suite that is not AEAD (CBC, RC4, 3DES…) — it must not;
 * - `tls.certificate`: trusted by the system's CAs (or `--ca`), names the host, not expiring within
 *   30 days, a key of at least 112-bit security (NIST SP 800-57 Part 1 Table 2);
 * - `tls.hsts`: `Strict-Transport-Security` with max-age of a year or more and includeSubDomains
 *   (ASVS 5.0 3.4.1).
 * The probe offers every version and suite itself (OpenSSL security level 0), so a server that
 * accepts an old one is seen doing so. When nothing answers, one `tls.probe` failure says so.
 */
export const PROBE_TIMEOUT_MS = 5_000;
const VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const NON_AEAD = 'ALL:!AESGCM:!CHACHA20:!AESCCM:!ARIAGCM:@SECLEVEL=0';
const HSTS_MIN_AGE = 31_536_000;

type Attempt =
  | { ok: true; protocol: string; cipher: string; cert: PeerCertificate; trustError: string | null }
  | { ok: false; code: string; handshake: boolean };

export interface ProbeOptions {
  readonly now: Date;
  /** Extra trusted CA certificates (PEM), e.g. the shop's private CA. */
  readonly ca?: string | undefined;
  readonly timeoutMs?: number;
}

function attempt(url: URL, options: ProbeOptions, version: SecureVersion, ciphers = 'ALL:@SECLEVEL=0'): Promise<Attempt> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    let handshake = false;
    const socket = connect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      minVersion: version,
      maxVersion: version,
      ciphers,
      rejectUnauthorized: false,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    const done = (result: Attempt) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, code: 'ETIMEDOUT', handshake }), options.timeoutMs ?? PROBE_TIMEOUT_MS);
    socket.once('connect', () => (handshake = true));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(false);
      // Node checks the chain and, unless it failed, the name; the name is checked here in any case.
      const authError = socket.authorizationError === null ? null : String(socket.authorizationError);
      const misnamed = checkServerIdentity(host, cert) === undefined ? null : `it does not name ${host}`;
      done({
        ok: true,
        protocol: socket.getProtocol() ?? version,
        cipher: socket.getCipher().standardName,
        cert,
        trustError: authError === null || authError === 'ERR_TLS_CERT_ALTNAME_INVALID' ? misnamed : authError,
      });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, code: error.code ?? 'ERROR', handshake }));
  });
}

function hsts(url: URL, options: ProbeOptions): Promise<string | null | Error> {
  return new Promise((resolve) => {
    // Any version and suite the server accepts: the header is judged even where TLS is not.
    const tls = { minVersion: 'TLSv1' as const, ciphers: 'ALL:@SECLEVEL=0', rejectUnauthorized: false, ...(options.ca === undefined ? {} : { ca: options.ca }) };
    const req = request(url, { method: 'GET', timeout: options.timeoutMs ?? PROBE_TIMEOUT_MS, ...tls }, (res) => {
      res.resume();
      const value = res.headers['strict-transport-security'];
      resolve(typeof value === 'string' ? value : null);
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.once('error', (error) => resolve(error));
    req.end();
  });
}

const label = (v: string) => v.replace('TLSv', 'TLS ').replace(/^TLS 1$/, 'TLS 1.0');

export async function probeTls(url: URL, options: ProbeOptions): Promise<Finding[]> {
  const attempts = new Map<SecureVersion, Attempt>();
  for (const v of VERSIONS) {
    const a = await attempt(url, options, v);
    attempts.set(v, a);
    // Nothing listens (or the address is unreachable): the other versions would only wait as long.
    if (!a.ok && !a.handshake) break;
  }
  const accepted = VERSIONS.filter((v) => attempts.get(v)?.ok === true);
  const where = url.host;
  if (accepted.length === 0) {
    const first = [...attempts.values()].at(-1) as Extract<Attempt, { ok: false }>;
    return [
      failed(
        'tls.probe',
        first.handshake ? `${where} accepted no TLS version from 1.0 to 1.3 (${first.code})` : `could not reach ${where} (${first.code})`,
        'check that the server runs and that --url names its https:// address and port',
      ),
    ];
  }
  const findings: Finding[] = [];
  const old = accepted.filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
  const modern = accepted.filter((v) => v === 'TLSv1.2' || v === 'TLSv1.3');
  const offered = accepted.map(label).join(', ').replace(/, ([^,]+)$/, ' and $1');
  if (old.length > 0)
    findings.push(failed('tls.protocols', `${where} accepts ${old.map(label).join(' and ')} (offered: ${offered})`, 'allow TLS 1.2 and 1.3 only on the server or proxy in front (ASVS 5.0 12.1.1)'));
  else if (modern.length === 0) findings.push(failed('tls.protocols', `${where} accepts neither TLS 1.2 nor 1.3`, 'enable TLS 1.3 and 1.2'));
  else findings.push(pass('tls.protocols', `${where} accepts ${offered} only`));

  if (attempts.get('TLSv1.2')?.ok === true) {
    const weak = await attempt(url, options, 'TLSv1.2', NON_AEAD);
    findings.push(
      weak.ok
        ? failed('tls.ciphers', `${where} accepts the non-AEAD suite ${weak.cipher} over TLS 1.2`, 'allow only AEAD suites (AES-GCM, ChaCha20-Poly1305) with ECDHE on the server or proxy (ASVS 5.0 12.1.1)')
        : pass('tls.ciphers', `${where} refuses every non-AEAD suite over TLS 1.2`),
    );
  } else if (attempts.get('TLSv1.3')?.ok === true) findings.push(pass('tls.ciphers', `${where} speaks TLS 1.3 only, whose suites are all AEAD`));

  const best = attempts.get(modern.at(-1) ?? accepted.at(-1)!) as Extract<Attempt, { ok: true }>;
  findings.push(certificateFinding(where, best, options.now));

  const header = await hsts(url, options);
  if (header instanceof Error) findings.push(failed('tls.hsts', `no HTTPS answer from ${url.origin}${url.pathname} (${(header as NodeJS.ErrnoException).code ?? 'error'})`, 'check that --url names a page the server answers'));
  else if (header === null) findings.push(failed('tls.hsts', `${url.origin} sends no Strict-Transport-Security header`, 'send Strict-Transport-Security: max-age=31536000; includeSubDomains (Custos does; a proxy in front must pass it on) — ASVS 5.0 3.4.1'));
  else {
    const age = Number(/max-age\s*=\s*"?(\d+)/i.exec(header)?.[1] ?? 0);
    const sub = /includesubdomains/i.test(header);
    if (age < HSTS_MIN_AGE || !sub)
      findings.push(
        warn(
          'tls.hsts',
          `Strict-Transport-Security is "${header.slice(0, 100)}": ${[age < HSTS_MIN_AGE ? 'max-age under a year' : null, sub ? null : 'without includeSubDomains'].filter((x) => x !== null).join(', ')}`,
          'send Strict-Transport-Security: max-age=31536000; includeSubDomains (ASVS 5.0 3.4.1)',
        ),
      );
    else findings.push(pass('tls.hsts', `Strict-Transport-Security: max-age ${age} s with includeSubDomains`));
  }
  return findings;
}

function certificateFinding(where: string, a: Extract<Attempt, { ok: true }>, now: Date): Finding {
  const id = 'tls.certificate';
  if (a.cert.raw === undefined) return failed(id, `${where} sent no certificate`, 'configure a certificate on the server or proxy');
  const cert = new X509Certificate(a.cert.raw);
  const until = new Date(cert.validTo);
  const day = until.toISOString().slice(0, 10);
  const left = daysBetween(now, until);
  const key = keyStrength(cert.publicKey);
  if (left < 0) return failed(id, `the certificate ${where} serves expired on ${day}`, 'renew the certificate and install it');
  if (key.weak) return failed(id, `the certificate ${where} serves has a weak key: ${key.text}`, `issue the certificate for ${STRONG_KEY}`);
  if (a.trustError !== null)
    return failed(id, `the certificate ${where} serves is not trusted: ${a.trustError} (${key.text}, until ${day})`, 'serve a certificate from a CA clients trust, for this host name, with its full chain (a private CA: give it to doctor with --ca)', { ciWarn: true });
  if (left <= CERT_NOTICE_DAYS) return warn(id, `the certificate ${where} serves expires on ${day}, in ${left} days`, 'renew the certificate and install it');
  return pass(id, `the certificate ${where} serves is trusted, names the host, ${key.text}, valid until ${day} (${left} days)`);
}
