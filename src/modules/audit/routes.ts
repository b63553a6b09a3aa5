import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditKeys } from '../../crypto/keyring.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import { AUDIT_QUERY_INVALID } from './errors.ts';
import { auditJwks } from './tree-head.ts';
import { latestHead, proveConsistency, type InclusionProofView } from './tree-store.ts';
import type { AuditRecord } from './service.ts';

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose(),
});

/** The signed tree head's JSON shape (docs/adr/0004-audit-merkle-log.md). */
export const treeHeadSchema = z.object({
  tree_size: z.number().int(),
  root_hash: z.string(),
  timestamp: z.string(),
  key_id: z.string(),
  signature: z.string(),
});

/** An entry's inclusion proof against the answer's `head` (RFC 9162 §2.1.3), or null while it waits for the next head. */
export const inclusionProofSchema = z
  .object({ leaf_index: z.number().int(), tree_size: z.number().int(), inclusion_path: z.array(z.string()) })
  .nullable();

/**
 * The columns of an access-log entry its leaf is built from, the hash of what the view withholds,
 * and the proof: enough for the customer to check the entry against the signed head
 * (src/modules/audit/browser-verify.ts).
 */
export const provenEntrySchema = {
  id: z.number(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  subject_id: z.string().nullable(),
  collection: z.string().nullable(),
  record_id: z.string().nullable(),
  fields: z.array(z.string()),
  purpose: z.string().nullable(),
  outcome: z.string(),
  withheld_hash: z.string(),
  proof: inclusionProofSchema,
};

/** An audit record as an access-log answer shows it (the leaf's columns, the withheld hash, the proof). */
export function provenEntryView(e: AuditRecord & { proof: InclusionProofView | null }) {
  return {
    id: e.id,
    at: e.at,
    actor: e.actor,
    action: e.action,
    subject_id: e.subjectId,
    collection: e.collection,
    record_id: e.recordId,
    fields: e.fields,
    purpose: e.purpose,
    outcome: e.outcome,
    withheld_hash: e.withheldHash,
    proof: e.proof,
  };
}

const jwks = z.object({
  keys: z.array(z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string(), alg: z.literal('EdDSA'), use: z.literal('sig') })),
});

/** GET /v1/keys/audit: the audit-signing public keys, current and retired, with no authentication. */
export function registerAuditKeyRoute(app: FastifyInstance, deps: { keys: AuditKeys }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/keys/audit', {
    schema: {
      tags: ['audit'],
      summary: 'The public keys that sign audit tree heads (JWK set; kid = the heads\u2019 key_id)',
      security: [],
      response: { 200: jwks },
    },
    handler: async () => {
      const k = deps.keys;
      return auditJwks([k.auditSigning, ...(k.auditSigningPrevious ?? [])]);
    },
  });
}

/** GET /v1/audit/consistency: the RFC 9162 consistency proof between two tree sizes, for any authenticated caller. */
export function registerAuditConsistencyRoute(app: FastifyInstance, deps: { db: Kysely<Database> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/audit/consistency', {
    schema: {
      tags: ['audit'],
      summary: 'Proof that the audit log of size `second` extends the log of size `first` (RFC 9162 §2.1.4)',
      security: [{ apiKey: [] }],
      querystring: z.object({ first: z.coerce.number().int().min(0), second: z.coerce.number().int().min(0) }),
      response: {
        200: z.object({ first: z.number(), second: z.number(), consistency_path: z.array(z.string()), head: treeHeadSchema }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
      },
    },
    handler: async (request) => {
      const { first, second } = request.query;
      const head = await latestHead(deps.db);
      if (head === null || first > second || second > head.tree_size) {
        fail(AUDIT_QUERY_INVALID, 'first and second must satisfy 0 <= first <= second <= the newest signed tree size');
      }
      return { first, second, consistency_path: await proveConsistency(deps.db, first, second), head };
    },
  });
}
