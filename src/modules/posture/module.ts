/**
 * Posture at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: no table; the checks of `custos doctor` (src/cli/commands/doctor.ts) and of
 * GET /v1/security/posture (routes.ts, in a staff scope of src/app.ts, for `incidents.manage`),
 * one file per family: tls-config.ts and tls-probe.ts (TLS), files.ts (key file permissions, where
 * the root key lies), secrets.ts (weak or default secrets), key-age.ts (rotation policy),
 * audit-check.ts (audit-log verification), access.ts (staff MFA, sessions, training; idle API
 * keys), deadlines.ts (retention, data-subject request deadlines), node-eol.ts (Node.js end of
 * life), advisories.ts (`npm audit`); service.ts runs them in order, finding.ts shapes the report,
 * render.ts prints it. No error codes of its own: a check that throws is reported as that check
 * failing.
 *
 * Personal data it holds: none. Findings name member, key and request ids, counts, file paths and
 * settings' names; never an email, a value or a secret.
 *
 * Depends on: config, crypto (key status, the keyring file, key strength), audit (verification),
 * consent (the ledger check), staff (members, training), identity (second factors, sessions),
 * apikeys (last use), retention, cards and rights (what is overdue), http/tls.ts (the TLS floor).
 */
export const POSTURE_AUDIT_ACTIONS = ['posture.read'] as const;
export type PostureAuditAction = (typeof POSTURE_AUDIT_ACTIONS)[number];
