import { z } from 'zod';

/**
 * The shape of an inventory file. Each field says what personal data it holds (category), which
 * purposes may use it on which legal basis (GDPR Art. 6(1)), how long it is kept, how it is
 * protected at rest, and how it is masked when a purpose may only see part of it.
 */
export const LEGAL_BASES = ['contract', 'legal_obligation', 'legitimate_interest', 'consent', 'vital_interest', 'public_task'] as const;
export const PROTECTIONS = ['randomised', 'searchable', 'plain'] as const;
export const MASKS = ['none', 'email', 'phone', 'name', 'year', 'partial', 'redact'] as const;
export const ACCESS = ['clear', 'masked', 'none'] as const;
export const SCALAR_TYPES = ['string', 'email', 'phone', 'date', 'datetime', 'locale', 'country', 'currency', 'decimal', 'integer', 'boolean', 'enum'] as const;

const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower_snake_case, starting with a letter');
const duration = z.string().regex(/^P(?=\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$/, 'must be an ISO 8601 duration such as P8Y or P30D, or account_lifetime');
/**
 * How long a field is kept: an ISO 8601 duration (P8Y, P30D, P1Y6M) counted from the record's
 * creation, `account_lifetime`, or a period with its anchor — `{ period: P8Y, from: end_of_year }`
 * counts from the end of the calendar year the record was made in (§147(4) AO, §257(5) HGB), and
 * `by_country` sets the period per bookkeeping country (CUSTOS_BOOKKEEPING_COUNTRY).
 */
const retention = z.union([
  duration,
  z.literal('account_lifetime'),
  z.strictObject({
    period: duration,
    from: z.enum(['end_of_year', 'created', 'account_closed']),
    by_country: z.record(z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'), duration).optional(),
  }),
]);
export type Retention = z.output<typeof retention>;

const subFieldSchema = z.strictObject({
  type: z.enum(SCALAR_TYPES),
  required: z.boolean().optional(),
  max_length: z.number().int().positive().max(100_000).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  values: z.array(z.string().min(1)).min(1).optional(),
  description: z.string().optional(),
  /** How this part is masked where its object is released masked; absent: codes (country, currency, enum) kept, other text by the object's mask. */
  mask: z.enum(MASKS).optional(),
  /** Free text that may hold a card number (opt-out of the card-number check of fields.ts). */
  allow_card_numbers: z.boolean().optional(),
});

/**
 * One purpose's use of a field. `access`: what a read for the purpose releases (`none`: nothing).
 * `write`: whether a write through the purpose may set or clear the field; absent, a purpose may
 * write what it reads in clear and nothing else, so `access: none` writes only with `write: true`
 * (a write-only purpose such as a checkout).
 */
const purposeUse = z.strictObject({
  basis: z.enum(LEGAL_BASES),
  access: z.enum(ACCESS).default('clear'),
  write: z.boolean().optional(),
});

export const fieldSchema = z
  .strictObject({
    type: z.enum([...SCALAR_TYPES, 'object', 'list']),
    description: z.string().optional(),
    required: z.boolean().optional(),
    max_length: z.number().int().positive().max(100_000).optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    values: z.array(z.string().min(1)).min(1).optional(),
    max_items: z.number().int().positive().max(10_000).optional(),
    category: identifier,
    protection: z.enum(PROTECTIONS),
    retention,
    mask: z.enum(MASKS).default('redact'),
    purposes: z.record(identifier, purposeUse),
    fields: z.record(identifier, subFieldSchema).optional(),
    /** Free text that may hold a card number (opt-out of the card-number check of fields.ts). */
    allow_card_numbers: z.boolean().optional(),
    /**
     * Whether the field goes into the customer's access and portability export (GDPR Art. 15(3),
     * 20(1)). Every field must say so, true or false; the loader refuses a field without it.
     */
    export: z.boolean().optional(),
  })
  .superRefine((f, ctx) => {
    const nested = f.type === 'object' || f.type === 'list';
    if (nested && f.fields === undefined) ctx.addIssue({ code: 'custom', path: ['fields'], message: `a field of type ${f.type} needs fields` });
    if (!nested && f.fields !== undefined) ctx.addIssue({ code: 'custom', path: ['fields'], message: 'only object and list fields have fields' });
    if (f.type === 'enum' && f.values === undefined) ctx.addIssue({ code: 'custom', path: ['values'], message: 'an enum field needs values' });
    if (f.protection === 'searchable' && nested) ctx.addIssue({ code: 'custom', path: ['protection'], message: 'only scalar fields can be searchable' });
  });

/** The languages a notice is written in; a purpose's description names each, or is one plain (English) string. */
export const NOTICE_LANGUAGES = ['en', 'de'] as const;
export type NoticeLanguage = (typeof NOTICE_LANGUAGES)[number];

/**
 * A purpose: what the data is used for, in each notice language; whether it sells or shares data
 * (CCPA: honoured Global Privacy Control opts out of it); from which notice version on earlier
 * consents stop counting (`changed_in`); and whether a grant waits for a mailed confirmation
 * (`double_opt_in`).
 */
export const purposeSchema = z.strictObject({
  description: z.union([z.string().min(1), z.strictObject({ en: z.string().min(1), de: z.string().min(1) })]),
  sale_or_sharing: z.boolean().default(false),
  changed_in: z.number().int().min(1).optional(),
  double_opt_in: z.boolean().default(false),
});

export const collectionSchema = z.strictObject({
  description: z.string().optional(),
  parent: identifier.optional(),
  fields: z.record(identifier, fieldSchema.nullable()),
});

export const inventoryFileSchema = z.strictObject({
  version: z.literal(1),
  extends: z.literal('default').optional(),
  purposes: z.record(identifier, purposeSchema.nullable()).optional(),
  collections: z.record(identifier, collectionSchema.nullable()).optional(),
});

export type InventoryFile = z.output<typeof inventoryFileSchema>;
export type PurposeSpec = z.output<typeof purposeSchema>;
export type FieldSpec = z.output<typeof fieldSchema>;
export type SubFieldSpec = z.output<typeof subFieldSchema>;
export type LegalBasis = (typeof LEGAL_BASES)[number];
export type Mask = (typeof MASKS)[number];
export type PurposeUseSpec = z.output<typeof purposeUse>;
