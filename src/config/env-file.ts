import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

/**
 * Reads an optional `.env` file in `dir` (the working directory) into `process.env` with Node's
 * own loader, which never replaces a variable the real environment already has (set, even empty):
 * the real environment wins. Only the entry points call this (bin/custos.js, src/main.ts); the
 * config loader reads whatever environment it is given, so tests pass their own. A root key found
 * in the file is warned about: it then lies in a file beside the data it protects.
 * Returns the file read, or undefined when there is none.
 */
export function loadEnvFile(dir: string = process.cwd(), warn: (line: string) => void = (line) => void process.stderr.write(`${line}\n`)): string | undefined {
  const file = join(dir, '.env');
  if (!existsSync(file)) return undefined;
  if (parseEnv(readFileSync(file, 'utf8')).CUSTOS_ROOT_KEY !== undefined)
    warn(
      `custos: warning: ${file} holds CUSTOS_ROOT_KEY: the root key then lies beside the data it protects; ` +
        'keep it in the environment from a secret store instead' +
        (process.env.CUSTOS_ROOT_KEY !== undefined ? ' (the environment sets it too, and wins)' : ''),
    );
  process.loadEnvFile(file);
  return file;
}
