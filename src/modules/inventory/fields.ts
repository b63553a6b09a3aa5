import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { CollectionDef, FieldDef } from './load.ts';
import type { SubFieldSpec } from './schema.ts';

/**
 * Zod schemas built from the inventory: the same schema validates a write, normalises it, and
 * (through fastify-type-provider-zod) documents the API in OpenAPI. A write is a strict object, so
 * a field the inventory does not declare is refused (data minimisation, GDPR Art. 5(1)(c)).
 */
export type StoredValue = string | number | boolean | null | StoredValue[] | { [k: string]: StoredValue };

type Scalar = Pick<SubFieldSpec, 'type' | 'max_length' | 'min' | 'max' | 'values'>;

export interface SchemaOptions {
  readonly phoneDefaultCountry?: string | undefined;
}

const DECIMAL = /^-?\d{1,15}(\.\d{1,6})?$/;

/** Email as stored and as looked up: trimmed, NFC, lower-case. */
export function normaliseEmail(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}

/** Phone as stored and as looked up: E.164, or undefined when it is not a possible number. */
export function normalisePhone(value: string, defaultCountry?: string): string | undefined {
  const parsed = parsePhoneNumberFromString(value.trim(), defaultCountry as CountryCode | undefined);
  return parsed?.isPossible() ? parsed.number : undefined;
}

function scalarSchema(f: Scalar, options: SchemaOptions): z.ZodType<StoredValue> {
  switch (f.type) {
    case 'string':
      return z.string().min(1).max(f.max_length ?? 1000);
    case 'email':
      return z
        .string()
        .max(254)
        .transform(normaliseEmail)
        .pipe(z.email({ pattern: z.regexes.unicodeEmail, message: 'must be an email address' }));
    case 'phone':
      return z
        .string()
        .max(40)
        .transform((v, ctx) => {
          const e164 = normalisePhone(v, options.phoneDefaultCountry);
          if (e164 === undefined) {
            ctx.addIssue({ code: 'custom', message: 'must be a phone number in international format (+country code)' });
            return z.NEVER;
          }
          return e164;
        });
    case 'date':
      return z.iso.date({ message: 'must be an ISO 8601 date (YYYY-MM-DD)' });
    case 'datetime':
      return z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with time zone' });
    case 'locale':
      return z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$/, 'must be a BCP 47 language tag such as de-DE');
    case 'country':
      return z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code such as DE');
    case 'currency':
      return z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code such as EUR');
    case 'decimal':
      return z
        .union([z.string(), z.number()])
        .transform((v) => (typeof v === 'number' ? String(v) : v))
        .pipe(z.string().regex(DECIMAL, 'must be a decimal amount such as 19.99'));
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
  return scalarSchema({ ...f, type: f.type }, options);
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
