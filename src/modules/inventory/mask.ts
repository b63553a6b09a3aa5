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

/**
 * Masks a field's value. The parts of an object or list are masked by their own `mask` where the
 * inventory declares one (so an order's `shipping_address.city` can be masked like an address's
 * `city`); otherwise codes (country, currency, enum) are kept and other text is masked by the
 * field's mask (`redact`, else `partial`).
 */
export function maskField(field: FieldDef, value: StoredValue): StoredValue {
  if (field.mask === 'none' || value === null) return value;
  if ((field.type === 'object' || field.type === 'list') && field.fields !== undefined) {
    const sub = field.fields;
    const fallback: Mask = field.mask === 'redact' ? 'redact' : 'partial';
    const one = (obj: StoredValue): StoredValue => {
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return STARS;
      const out: Record<string, StoredValue> = {};
      for (const [k, v] of Object.entries(obj)) {
        const spec = Object.hasOwn(sub, k) ? sub[k] : undefined;
        const mask = spec?.mask ?? (spec !== undefined && KEEP_TYPES.has(spec.type) ? 'none' : fallback);
        out[k] = maskScalar(mask, v);
      }
      return out;
    };
    return Array.isArray(value) ? value.map(one) : one(value);
  }
  return maskScalar(field.mask, value);
}
