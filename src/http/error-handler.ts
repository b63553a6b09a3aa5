import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorSpec } from '../kernel/errors.ts';
import { CardErrors } from '../modules/cards/errors.ts';
import { VaultErrors } from '../modules/vault/errors.ts';
import type { InputRule } from '../modules/inventory/fields.ts';
import { HttpErrors } from './errors.ts';
import { fieldPath } from './json-body.ts';

/**
 * One place maps every failure to `{ error: { code, message, request_id, ... } }`. Known errors
 * keep their stable code and status; anything unknown becomes a generic 500 logged once, without
 * its message (a driver's message can quote the values it choked on). Nothing from the request
 * body is ever echoed: validation errors name fields, never values.
 */
const safeName = (name: string) => fieldPath([name]);

/** The input rules of the write schemas (inventory/fields.ts), each with its own code. */
const RULES: Record<InputRule, { spec: ErrorSpec; what: string }> = {
  control_character: { spec: VaultErrors.VAULT_TEXT_CONTROL_CHARACTER, what: 'control character in' },
  invisible_character: { spec: VaultErrors.VAULT_CONTACT_INVISIBLE_CHARACTER, what: 'invisible or format character in' },
  date_of_birth_range: { spec: VaultErrors.VAULT_DATE_OF_BIRTH_OUT_OF_RANGE, what: 'date of birth in the future or more than 130 years back' },
  decimal_as_number: { spec: VaultErrors.VAULT_DECIMAL_AS_NUMBER, what: 'decimal amount sent as a JSON number instead of a string' },
  card_number: { spec: CardErrors.CARDS_NUMBER_IN_FREE_TEXT, what: 'payment card number in' },
};
const pathOf = (issue: ValidationIssue) => issue.instancePath.split('/').filter(Boolean).map(safeName).join('.');
const ruleOf = (issue: ValidationIssue): InputRule | undefined => {
  const rule = issue.params?.params?.rule;
  return typeof rule === 'string' && Object.hasOwn(RULES, rule) ? (rule as InputRule) : undefined;
};

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params?: { keys?: unknown; params?: { rule?: unknown } };
}

export function send(reply: FastifyReply, request: FastifyRequest, spec: ErrorSpec, message: string, details?: Record<string, unknown>) {
  return reply
    .code(spec.status)
    .header('cache-control', 'no-store')
    .header('x-request-id', request.id)
    .send({ error: { code: spec.code, message, request_id: request.id, ...(details ?? {}) } });
}

function validationFailure(request: FastifyRequest, reply: FastifyReply, error: FastifyError & { validation: ValidationIssue[] }) {
  const where = error.validationContext;
  const issues = error.validation;
  if (where === 'params') return send(reply, request, VaultErrors.VAULT_ID_MALFORMED, 'the id in the path is not well-formed');
  if (where === 'body') {
    const undeclared = issues
      .filter((i) => i.keyword === 'unrecognized_keys')
      .flatMap((i) => {
        const keys = Array.isArray(i.params?.keys) ? (i.params.keys as string[]) : [];
        const prefix = pathOf(i);
        return keys.map((k) => (prefix === '' ? safeName(k) : `${prefix}.${safeName(k)}`));
      });
    if (undeclared.length > 0)
      return send(reply, request, VaultErrors.VAULT_FIELD_UNDECLARED, `the inventory does not declare: ${undeclared.join(', ')}`, {
        fields: undeclared,
      });
    const broken = issues.find((i) => ruleOf(i) !== undefined);
    if (broken !== undefined) {
      const rule = ruleOf(broken)!;
      const named = [...new Set(issues.filter((i) => ruleOf(i) === rule).map((i) => pathOf(i) || '(body)'))];
      return send(reply, request, RULES[rule].spec, `${RULES[rule].what}: ${named.join(', ')}`, { fields: named });
    }
    const fields = issues.map((i) => ({
      field: pathOf(i) || '(body)',
      problem: i.message ?? i.keyword,
    }));
    return send(reply, request, VaultErrors.VAULT_FIELD_INVALID, `invalid: ${[...new Set(fields.map((f) => f.field))].join(', ')}`, { fields });
  }
  const names = [...new Set(issues.map(pathOf))].filter(Boolean);
  return send(reply, request, HttpErrors.REQUEST_INVALID, `invalid ${where ?? 'request'}${names.length ? `: ${names.join(', ')}` : ''}`);
}

const FASTIFY_CODES: Record<string, ErrorSpec> = {
  FST_ERR_CTP_INVALID_JSON_BODY: HttpErrors.REQUEST_MALFORMED_JSON,
  FST_ERR_CTP_EMPTY_JSON_BODY: HttpErrors.REQUEST_MALFORMED_JSON,
  FST_ERR_CTP_BODY_TOO_LARGE: HttpErrors.REQUEST_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: HttpErrors.REQUEST_UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: HttpErrors.REQUEST_INVALID,
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => send(reply, request, HttpErrors.ROUTE_NOT_FOUND, 'no such route'));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status >= 500) request.log.error({ code: error.code }, 'request failed');
      return send(reply, request, { code: error.code, status: error.status, description: '' }, error.expose ? error.message : 'internal error', error.details);
    }
    if (Array.isArray((error as { validation?: unknown }).validation))
      return validationFailure(request, reply, error as FastifyError & { validation: ValidationIssue[] });
    if (error.code !== undefined && error.code in FASTIFY_CODES) {
      const spec = FASTIFY_CODES[error.code]!;
      return send(reply, request, spec, spec.description);
    }
    if (error.statusCode === 429) return send(reply, request, HttpErrors.RATE_LIMITED, 'too many requests');
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
      return send(reply, request, { ...HttpErrors.REQUEST_INVALID, status: error.statusCode }, 'the request was refused');
    // Unknown: log the type and where it came from, never the message (it may quote values).
    const stack = (error.stack ?? '').split('\n').slice(1, 8).join('\n');
    request.log.error({ err: { type: error.name, code: error.code, stack } }, 'unexpected error');
    return send(reply, request, HttpErrors.INTERNAL_ERROR, 'internal error');
  });
}
