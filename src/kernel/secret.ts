import { inspect } from 'node:util';

/**
 * A value that must never reach a log, an error message or a response by accident: it prints as
 * `[redacted]` through `toString`, `toJSON` and `util.inspect`. `reveal()` is the one accessor, so
 * every place that touches the value is one grep away.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
