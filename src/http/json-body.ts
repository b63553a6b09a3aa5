import { fail } from '../kernel/errors.ts';
import { HttpErrors } from './errors.ts';

/**
 * The one JSON body parser (Fastify's own is replaced by it). Besides malformed JSON it refuses,
 * each with its own code and the field it found:
 * - a key `__proto__`, or `constructor` holding `prototype`, anywhere (prototype pollution,
 *   ASVS 5.0 1.5.2), with a message that says so;
 * - a string or key holding an unpaired UTF-16 surrogate (only a `\u` escape can make one: the
 *   body is decoded from UTF-8, which has none), which no store, index or mail can represent.
 * Bodies without `\u`, `__proto__` or `constructor` in their text cannot hold either, so they
 * are parsed and not walked.
 */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    if (text.length === 0) throw new SyntaxError('empty');
    value = JSON.parse(text);
  } catch {
    fail(HttpErrors.REQUEST_MALFORMED_JSON, HttpErrors.REQUEST_MALFORMED_JSON.description);
  }
  if (text.includes('\\u') || text.includes('__proto__') || text.includes('constructor')) checkParsed(value);
  return value;
}

const SAFE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,63}|\d{1,6})$/;

/** A field path as errors may show it: names that could be personal data become `[unnamed]`. */
export function fieldPath(path: readonly (string | number)[]): string {
  return path.map((p) => (SAFE_NAME.test(String(p)) ? String(p) : '[unnamed]')).join('.') || '(body)';
}

/** Walks the parsed body without recursion (a deeply nested body cannot exhaust the stack). */
function checkParsed(root: unknown): void {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: root, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (!value.isWellFormed()) illFormed(path);
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], path: [...path, i] });
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        const at = [...path, key];
        if (!key.isWellFormed()) illFormed(path);
        if (key === '__proto__' || (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')))
          fail(HttpErrors.REQUEST_PROTOTYPE_KEY, `the body uses the key "${key === '__proto__' ? '__proto__' : 'constructor.prototype'}", which is refused (prototype pollution): ${fieldPath(at)}`, {
            fields: [fieldPath(at)],
          });
        stack.push({ value: child, path: at });
      }
    }
  }
}

function illFormed(path: readonly (string | number)[]): never {
  const field = fieldPath(path);
  fail(HttpErrors.REQUEST_TEXT_ILL_FORMED, `unpaired UTF-16 surrogate in: ${field}`, { fields: [field] });
}
