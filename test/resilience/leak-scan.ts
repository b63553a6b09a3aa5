import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Looks for known plaintext values in bytes: as UTF-8 (and Latin-1) text, case-insensitively; as
 * UTF-16LE text; and, for values long enough to tell apart, inside base64, base64url and hex
 * runs (at every byte alignment), which is how a value "encoded but not encrypted" would hide.
 */
export interface Leak {
  readonly where: string;
  readonly needle: string;
  readonly as: string;
}

export function leaksIn(where: string, bytes: Buffer, needles: readonly string[]): Leak[] {
  const out: Leak[] = [];
  const text = bytes.toString('latin1').toLowerCase();
  const utf16 = [utf16At(bytes, 0).toLowerCase(), utf16At(bytes, 1).toLowerCase()];
  const raw = bytes.toString('latin1');
  for (const needle of needles) {
    const lower = needle.toLowerCase();
    const utf8Lower = Buffer.from(lower, 'utf8').toString('latin1');
    if (text.includes(utf8Lower)) out.push({ where, needle, as: 'text' });
    if (utf16.some((t) => t.includes(lower))) out.push({ where, needle, as: 'utf16' });
    if (Buffer.byteLength(needle) >= 12) {
      for (const variant of new Set([needle, lower])) {
        for (const [as, fragment] of encodedFragments(Buffer.from(variant, 'utf8')))
          if (raw.includes(fragment) || (as === 'hex' && text.includes(fragment))) out.push({ where, needle, as });
      }
    }
  }
  return out;
}

/**
 * UTF-16LE text of `bytes` from byte `offset` on, whole code units only, decoded from an aligned
 * copy of even length. Node 24's decoder, given a slice that starts at an odd address and has an
 * odd length, writes one byte past its own buffer (nodejs/node#64697): `subarray(1)` of a file did
 * that here and corrupted the test worker's heap, which aborted in a later free().
 */
function utf16At(bytes: Buffer, offset: number): string {
  const length = Math.max(0, bytes.length - offset) & ~1;
  const aligned = Buffer.alloc(length);
  bytes.copy(aligned, 0, offset, offset + length);
  return aligned.toString('utf16le');
}

/** The parts of an encoding that depend on the value's bytes alone, at each alignment. */
function encodedFragments(value: Buffer): [string, string][] {
  const out: [string, string][] = [['hex', value.toString('hex')]];
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), value]).toString('base64');
    const middle = enc.slice(k === 0 ? 0 : 4, enc.length - 4);
    out.push(['base64', middle], ['base64url', middle.replaceAll('+', '-').replaceAll('/', '_')]);
  }
  return out;
}

/** Every regular file under `dir` (recursively). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) out.push(...filesUnder(path));
    else if (st.isFile()) out.push(path);
  }
  return out;
}

export function leaksInFiles(files: readonly string[], needles: readonly string[]): Leak[] {
  return files.flatMap((file) => leaksIn(file, readFileSync(file), needles));
}
