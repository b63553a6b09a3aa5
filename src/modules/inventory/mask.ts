import type { FieldDef, StoredValue } from './index.ts';
import type { Mask } from './schema.ts';

/**
 * Masking shows a purpose just enough to do its job and nothing it could misuse (GDPR Art. 25
 * data protection by default; PCI DSS 3.4.1 for the same idea applied to card numbers). Masks
 * never reveal more than a fixed number of characters, however long or short the value.
 */
const STARS = '***';

function partial(value: string): string {
  return value.length <= 4 ? STARS : `${value.slice(0, 2)}${STARS}`;
}

function maskEmail(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 1) return STARS;
  const domain = value.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  const tld = dot > 0 ? domain.slice(dot) : '';
  return `${value[0]}${STARS}@${domain[0] ?? ''}${STARS}${tld}`;
}

function maskPhone(value: string): string {
  const digits = value.replace(/\D/g, '');
  if (digits.length < 6) return STARS;
  return `+${digits.slice(0, 2)}${'*'.repeat(digits.length - 4)}${digits.slice(-2)}`;
}

function maskName(value: string): string {
  const initials = value
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => `${[...w][0]}.`);
  return initials.length > 0 ? initials.join(' ') : STARS;
}

function maskYear(value: string): string {
  return /^\d{4}-/.test(value) ? `${value.slice(0, 4)}-**-**` : STARS;
}

export function maskScalar(mask: Mask, value: StoredValue): StoredValue {
  if (mask === 'none') return value;
  if (typeof value !== 'string') return STARS;
  switch (mask) {
    case 'email':
      return maskEmail(value);
    case 'phone':
      return maskPhone(value);
    case 'name':
      return maskName(value);
    case 'year':
      return maskYear(value);
    case 'partial':
      return partial(value);
    case 'redact':
      return STARS;
  }
}

const KEEP_TYPES = new Set(['country', 'currency', 'enum']);

/** Masks a field's value; objects and lists mask each text part, keeping only codes (country, currency). */
export function maskField(field: FieldDef, value: StoredValue): StoredValue {
  if (field.mask === 'none' || value === null) return value;
  if ((field.type === 'object' || field.type === 'list') && field.fields !== undefined) {
    const sub = field.fields;
    const one = (obj: StoredValue): StoredValue => {
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return STARS;
      const out: Record<string, StoredValue> = {};
      for (const [k, v] of Object.entries(obj)) {
        const spec = sub[k];
        out[k] = spec !== undefined && KEEP_TYPES.has(spec.type) ? v : maskScalar(field.mask === 'redact' ? 'redact' : 'partial', v);
      }
      return out;
    };
    return Array.isArray(value) ? value.map(one) : one(value);
  }
  return maskScalar(field.mask, value);
}
