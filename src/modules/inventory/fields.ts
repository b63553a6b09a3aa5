import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { CollectionDef, FieldDef } from './load.ts';
import { containsPan } from '../cards/card-rules.ts';
import type { SubFieldSpec } from './schema.ts';

/**
 * Zod schemas built from the inventory: the same schema validates a write, normalises it, and
 * (through fastify-type-provider-zod) documents the API in OpenAPI. A write is a strict object, so
 * a field the inventory does not declare is refused (data minimisation, GDPR Art. 5(1)(c)).
 */
export type StoredValue = string | number | boolean | null | StoredValue[] | { [k: string]: StoredValue };

type Scalar = Pick<SubFieldSpec, 'type' | 'max_length' | 'min' | 'max' | 'values' | 'allow_card_numbers'>;

export interface SchemaOptions {
  readonly phoneDefaultCountry?: string | undefined;
  /** Today, for dates that may not lie in the future (the service's clock; the system's by default). */
  readonly now?: (() => Date) | undefined;
}

const DECIMAL = /^-?\d{1,15}(\.\d{1,6})?$/;

/**
 * Rules a value can break beyond its type, each reported as a zod issue whose `params.rule` the
 * error handler turns into a code of its own (naming the field, never the value).
 */
export type InputRule = 'control_character' | 'invisible_character' | 'date_of_birth_range' | 'decimal_as_number' | 'card_number';

/** C0 controls other than tab and newline, DEL, and C1 controls. */
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
/**
 * Characters that do not show: controls, format characters (zero-width space, joiners, word
 * joiner, soft hyphen, bidi embeddings, overrides, isolates and marks, byte-order mark), line and
 * paragraph separators, and the fillers and selectors that render as nothing. An email or phone
 * holding one looks like another person's and would miss their blind index.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u3164\uFE00-\uFE0F\uFFA0]/u;

/** True when free text holds a control character other than tab and newline. */
export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}

/** True when a value holds a character that does not show (see INVISIBLE). */
export function hasInvisibleCharacter(value: string): boolean {
  return INVISIBLE.test(value);
}

function issue(ctx: z.RefinementCtx, rule: InputRule, message: string): void {
  ctx.addIssue({ code: 'custom', message, params: { rule } });
}

const DAY_MS = 86_400_000;
/** The oldest date of birth accepted: 130 years before today. */
export const OLDEST_AGE_YEARS = 130;

/**
 * A date of birth lies neither in the future nor more than 130 years back. "Today" is the latest
 * date anywhere on Earth (UTC+14), so a birth today in any time zone is accepted.
 */
function birthDateInRange(value: string, now: Date): boolean {
  const latest = new Date(now.getTime() + 14 * 3_600_000).toISOString().slice(0, 10);
  const oldest = new Date(now.getTime() - DAY_MS);
  oldest.setUTCFullYear(oldest.getUTCFullYear() - OLDEST_AGE_YEARS);
  return value <= latest && value >= oldest.toISOString().slice(0, 10);
}

/** Email as stored and as looked up: trimmed, NFC, lower-case. */
export function normaliseEmail(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}

/** Phone as stored and as looked up: E.164, or undefined when it is not a possible number. */
export function normalisePhone(value: string, defaultCountry?: string): string | undefined {
  const parsed = parsePhoneNumberFromString(value.trim(), defaultCountry as CountryCode | undefined);
  return parsed?.isPossible() ? parsed.number : undefined;
}

const noInvisible = (value: string, ctx: z.RefinementCtx) => {
  if (hasInvisibleCharacter(value)) issue(ctx, 'invisible_character', 'must not contain invisible or format characters');
};

function scalarSchema(f: Scalar, options: SchemaOptions, name?: string): z.ZodType<StoredValue> {
  switch (f.type) {
    case 'string':
      return z
        .string()
        .min(1)
        .max(f.max_length ?? 1000)
        .superRefine((value, ctx) => {
          if (hasControlCharacter(value)) issue(ctx, 'control_character', 'must not contain control characters other than tab and newline');
          // Card numbers belong in the card vault (POST /v1/cards), not in free text: PCI DSS 3.5.1.
          else if (f.allow_card_numbers !== true && containsPan(value)) issue(ctx, 'card_number', 'must not contain a payment card number; tokenise cards through /v1/cards');
        });
    case 'email':
      return z
        .string()
        .max(254)
        .superRefine(noInvisible)
        .transform(normaliseEmail)
        .pipe(z.email({ pattern: z.regexes.unicodeEmail, message: 'must be an email address' }));
    case 'phone':
      return z
        .string()
        .max(40)
        .superRefine(noInvisible)
        .transform((v, ctx) => {
          const e164 = normalisePhone(v, options.phoneDefaultCountry);
          if (e164 === undefined) {
            ctx.addIssue({ code: 'custom', message: 'must be a phone number in international format (+country code)' });
            return z.NEVER;
          }
          return e164;
        });
    case 'date': {
      const date = z.iso.date({ message: 'must be an ISO 8601 date (YYYY-MM-DD)' });
      if (name !== 'date_of_birth') return date;
      const now = options.now ?? (() => new Date());
      return date.superRefine((value, ctx) => {
        // A malformed date is reported by the format check alone.
        if (/^\d{4}-\d{2}-\d{2}$/.test(value) && !birthDateInRange(value, now())) issue(ctx, 'date_of_birth_range', `must not lie in the future or more than ${OLDEST_AGE_YEARS} years back`);
      });
    }
    case 'datetime':
      return z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with time zone' });
    case 'locale':
      return z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/, 'must be a BCP 47 language tag such as de-DE');
    case 'country':
      return z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code such as DE');
    case 'currency':
      return z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code such as EUR');
    case 'decimal':
      // A JSON number loses digits before anything sees it (49.90 arrives as 49.9): refused.
      return z
        .unknown()
        .transform((v, ctx) => {
          if (typeof v === 'number') {
            issue(ctx, 'decimal_as_number', 'must be a string such as "19.99", not a JSON number');
            return z.NEVER;
          }
          if (typeof v !== 'string' || !DECIMAL.test(v)) {
            ctx.addIssue({ code: 'custom', message: 'must be a decimal amount such as "19.99"' });
            return z.NEVER;
          }
          return v;
        })
        .meta({ type: 'string', pattern: DECIMAL.source, description: 'A decimal amount as a string, such as "19.99".' });
    case 'integer': {
      let s = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
      if (f.min !== undefined) s = s.min(f.min);
      if (f.max !== undefined) s = s.max(f.max);
      return s;
    }
    case 'boolean':
      return z.boolean();
    case 'enum':
      return z.enum((f.values ?? []) as [string, ...string[]]);
  }
}

function nestedSchema(fields: Record<string, SubFieldSpec>, options: SchemaOptions): z.ZodType<StoredValue> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, sub] of Object.entries(fields)) {
    const s = scalarSchema(sub, options);
    shape[name] = sub.required === true ? s : s.optional();
  }
  return z.strictObject(shape) as unknown as z.ZodType<StoredValue>;
}

export function fieldWriteSchema(f: FieldDef, options: SchemaOptions): z.ZodType<StoredValue> {
  if (f.type === 'object') return nestedSchema(f.fields ?? {}, options);
  if (f.type === 'list') return z.array(nestedSchema(f.fields ?? {}, options)).max(f.max_items ?? 100);
  return scalarSchema({ ...f, type: f.type }, options, f.name);
}

/** The body of a create (required fields required) or of a patch (all optional; null clears). */
export function writeSchema(collection: CollectionDef, mode: 'create' | 'patch', options: SchemaOptions) {
  const shape: Record<string, z.ZodType> = {};
  for (const f of collection.fields.values()) {
    const s = fieldWriteSchema(f, options);
    if (mode === 'patch') shape[f.name] = f.required === true ? s.optional() : s.nullable().optional();
    else shape[f.name] = f.required === true ? s : s.optional();
  }
  return z.strictObject(shape);
}

function scalarOut(f: Scalar): z.ZodType {
  if (f.type === 'integer') return z.union([z.number().int(), z.string()]);
  if (f.type === 'boolean') return z.union([z.boolean(), z.string()]);
  return z.string();
}

function nestedOut(fields: Record<string, SubFieldSpec>): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, sub] of Object.entries(fields)) shape[name] = scalarOut(sub).optional();
  return z.object(shape);
}

/** A field as it may leave: its value, or a masked string; absent when the purpose may not see it. */
export function fieldResponseSchema(f: FieldDef): z.ZodType {
  if (f.type === 'object') return nestedOut(f.fields ?? {}).optional();
  if (f.type === 'list') return z.array(nestedOut(f.fields ?? {})).optional();
  return scalarOut({ ...f, type: f.type }).optional();
}

export function responseShape(collection: CollectionDef): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {};
  for (const f of collection.fields.values()) shape[f.name] = fieldResponseSchema(f);
  return shape;
}
