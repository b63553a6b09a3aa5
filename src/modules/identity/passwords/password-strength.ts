import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as enDictionary, translations } from '@zxcvbn-ts/language-en';

/**
 * Password strength as zxcvbn-ts estimates it: a score 0–4 and advice the UI can show while the
 * person types (NIST SP 800-63B §3.1.1.2: "offer guidance … such as a password-strength meter";
 * ASVS 6.2.7 allows it, never as a composition rule). The score informs; it does not refuse — the
 * refusals are length, the blocklist and context words (password-policy.ts).
 *
 * Only the first ANALYSED_LENGTH characters are analysed: zxcvbn's matching grows fast with length
 * (measured here: about 1 s for one 76-character password at its defaults), and anything longer
 * than that is strong by length anyway. The estimate runs in a worker thread (strength-estimator.ts)
 * so it never blocks the event loop.
 */
export interface PasswordStrength {
  readonly score: 0 | 1 | 2 | 3 | 4;
  readonly guesses_log10: number;
  readonly warning: string | null;
  readonly suggestions: readonly string[];
}

export const ANALYSED_LENGTH = 64;

let factory: ZxcvbnFactory | undefined;

function zxcvbn(): ZxcvbnFactory {
  factory ??= new ZxcvbnFactory({
    dictionary: { ...commonDictionary, ...enDictionary },
    graphs: adjacencyGraphs,
    translations,
    maxLength: ANALYSED_LENGTH,
    l33tMaxSubstitutions: 16,
  });
  return factory;
}

/** Synchronous estimate; call it through the estimator's worker, not on the request thread. */
export function estimateStrength(password: string, userInputs: readonly string[]): PasswordStrength {
  const result = zxcvbn().check(password, [...userInputs]);
  return {
    score: result.score,
    guesses_log10: Math.round(result.guessesLog10 * 100) / 100,
    warning: result.feedback.warning,
    suggestions: result.feedback.suggestions,
  };
}
