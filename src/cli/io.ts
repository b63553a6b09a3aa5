/**
 * Output rules of every command: results on standard output, messages and progress on standard
 * error, progress only when standard error is a terminal, non-zero exit on failure.
 */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** A progress line that rewrites itself on a terminal, and stays silent elsewhere. */
  progress(text: string): void;
  done(): void;
}

export function processIo(): Io {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    progress(text) {
      if (!tty) return;
      process.stderr.write(`\r\u001b[2K${text}`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
  };
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
