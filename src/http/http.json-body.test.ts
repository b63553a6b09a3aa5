import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../kernel/errors.ts';
import { parseJsonBody } from './json-body.ts';

/**
 * Property tests of the JSON body parser: it reads every JSON text as JSON.parse does, and
 * refuses, with the path of the offending string or key, an unpaired surrogate or a prototype key
 * placed anywhere.
 */
const codeOf = (fn: () => unknown): { code: string; fields: unknown } | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { code: error.code, fields: error.details?.fields };
  }
};

const key = fc.stringMatching(/^[a-z][a-z_]{0,8}$/).filter((k) => k !== 'constructor');
const lone = fc.oneof(fc.integer({ min: 0xd800, max: 0xdbff }), fc.integer({ min: 0xdc00, max: 0xdfff })).map((c) => String.fromCharCode(c));
const wellFormed = fc.jsonValue().filter((v) => !/\\ud[89a-f]|__proto__/i.test(JSON.stringify(v)));

/** `value` with `leaf` put at the end of a random path of object keys and array slots. */
const nested = (leaf: fc.Arbitrary<unknown>) =>
  fc.tuple(fc.array(fc.oneof(key, fc.constant(0)), { maxLength: 5 }), leaf).map(([path, value]) => {
    let out: unknown = value;
    for (const step of [...path].reverse()) out = step === 0 ? [out] : { [step]: out };
    return { body: out, path: path.map(String).join('.') || '(body)' };
  });

describe('JSON body parser', () => {
  it('reads any well-formed JSON text as JSON.parse does', () => {
    fc.assert(
      fc.property(wellFormed, (v) => {
        expect(parseJsonBody(JSON.stringify(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });

  it('refuses an unpaired surrogate at any depth with REQUEST_TEXT_ILL_FORMED naming its path', () => {
    // A lone surrogate stays lone only where its neighbour is not its partner.
    const text = fc
      .tuple(fc.string(), lone, fc.string())
      .map(([a, l, b]) => a + l + b)
      .filter((t) => !t.isWellFormed());
    fc.assert(
      fc.property(nested(text), ({ body, path }) => {
        expect(codeOf(() => parseJsonBody(JSON.stringify(body)))).toEqual({ code: 'REQUEST_TEXT_ILL_FORMED', fields: [path] });
      }),
    );
  });

  it('refuses __proto__ at any depth, escaped or not, with REQUEST_PROTOTYPE_KEY', () => {
    fc.assert(
      fc.property(nested(fc.constant('__marker__')), fc.boolean(), ({ body }, escaped) => {
        const text = JSON.stringify(body).replace('"__marker__"', escaped ? '{"\\u005f_proto__":{"admin":true}}' : '{"__proto__":{"admin":true}}');
        expect(codeOf(() => parseJsonBody(text))?.code).toBe('REQUEST_PROTOTYPE_KEY');
      }),
    );
  });

  it('refuses malformed and empty text with REQUEST_MALFORMED_JSON', () => {
    for (const text of ['', '{', '{"a":1}}', "{'a':1}", 'undefined']) expect(codeOf(() => parseJsonBody(text))?.code).toBe('REQUEST_MALFORMED_JSON');
  });
});
