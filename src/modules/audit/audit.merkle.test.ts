import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  emptyRoot,
  Frontier,
  inclusionProof,
  leafHash,
  proofNodeKeys,
  rootHash,
  verifyConsistency,
  verifyInclusion,
  type Hash,
  type NodeSource,
} from './merkle.ts';

/*
 * The stored-node tree against a naive recomputation written straight from RFC 9162 §2.1
 * (MTH, PATH, SUBPROOF over the leaf list), and the verifiers against both.
 */
const sha = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
const naiveLeaf = (d: Buffer): Buffer => sha(Buffer.from([0]), d);
const naiveNode = (l: Buffer, r: Buffer): Buffer => sha(Buffer.from([1]), l, r);
function k(n: number): number {
  let x = 1;
  while (x * 2 < n) x *= 2;
  return x;
}
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return naiveLeaf(d[0] as Buffer);
  const s = k(d.length);
  return naiveNode(mth(d.slice(0, s)), mth(d.slice(s)));
}
function naivePath(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const s = k(d.length);
  return m < s ? [...naivePath(m, d.slice(0, s)), mth(d.slice(s))] : [...naivePath(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function naiveSub(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...naiveSub(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...naiveSub(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

/** A tree built by appending to a frontier, its nodes kept in a map as a database would. */
function built(d: Buffer[]): { nodes: NodeSource; roots: Hash[] } {
  const map = new Map<string, Hash>();
  const f = new Frontier(0, []);
  const roots: Hash[] = [f.root()];
  for (const leaf of d) {
    for (const n of f.append(leafHash(leaf))) map.set(`${n.level}:${n.index}`, n.hash);
    roots.push(f.root());
  }
  const nodes: NodeSource = (level, index) => {
    const h = map.get(`${level}:${index}`);
    if (h === undefined) throw new Error(`node ${level}:${index} not stored`);
    return h;
  };
  return { nodes, roots };
}

// Leaves are distinct (their index leads), so a proof for one leaf cannot hold for another.
const leaves = fc
  .array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 })
  .map((us) => us.map((u, i) => Buffer.concat([Buffer.from(`${i}:`), Buffer.from(u)])));
const hex = (hs: Buffer[]): string[] => hs.map((h) => h.toString('hex'));

describe('RFC 9162 Merkle tree', () => {
  it('the empty tree hashes to SHA-256 of nothing', () => {
    expect(emptyRoot().toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('the eight-leaf test tree of the Certificate Transparency sources has its published root', () => {
    const d = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) =>
      Buffer.from(h, 'hex'),
    );
    const { nodes } = built(d);
    expect(rootHash(nodes, 8).toString('hex')).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  });

  it('roots from stored nodes and from the frontier equal MTH of every prefix', () => {
    fc.assert(
      fc.property(leaves, (d) => {
        const { nodes, roots } = built(d);
        for (let n = 0; n <= d.length; n++) {
          expect(roots[n]?.toString('hex')).toBe(mth(d.slice(0, n)).toString('hex'));
          expect(rootHash(nodes, n).toString('hex')).toBe(mth(d.slice(0, n)).toString('hex'));
        }
      }),
    );
  });

  it('inclusion proofs equal PATH and verify; a wrong leaf, index or root does not', () => {
    fc.assert(
      fc.property(leaves, fc.nat(), fc.nat(), (d, a, b) => {
        const { nodes } = built(d);
        const n = 1 + (a % d.length);
        const m = b % n;
        const proof = inclusionProof(nodes, m, n);
        expect(hex(proof)).toEqual(hex(naivePath(m, d.slice(0, n))));
        const root = mth(d.slice(0, n));
        const lh = naiveLeaf(d[m] as Buffer);
        expect(verifyInclusion(m, n, lh, proof, root)).toBe(true);
        expect(verifyInclusion(m, n, naiveLeaf(Buffer.concat([d[m] as Buffer, Buffer.from([1])])), proof, root)).toBe(false);
        if (n > 1) expect(verifyInclusion((m + 1) % n, n, lh, proof, root)).toBe(false);
        expect(verifyInclusion(m, n, lh, [...proof, root], root)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(m, n, lh, proof.slice(1), root)).toBe(false);
        expect(verifyInclusion(m, n, lh, proof, mth([...d.slice(0, n - 1), Buffer.from('other')]))).toBe(false);
      }),
    );
  });

  it('consistency proofs equal SUBPROOF and verify; a changed old tree or a wrong size does not', () => {
    fc.assert(
      fc.property(leaves, fc.nat(), fc.nat(), (d, a, b) => {
        const { nodes } = built(d);
        const second = 1 + (a % d.length);
        const first = b % (second + 1);
        const proof = consistencyProof(nodes, first, second);
        const expected = first === 0 || first === second ? [] : naiveSub(first, d.slice(0, second), true);
        expect(hex(proof)).toEqual(hex(expected));
        const r1 = mth(d.slice(0, first));
        const r2 = mth(d.slice(0, second));
        expect(verifyConsistency(first, second, r1, r2, proof)).toBe(true);
        if (first > 0) {
          // A fork: the old tree's last leaf differs.
          const forked = [...d.slice(0, first - 1), Buffer.from('fork')];
          expect(verifyConsistency(first, second, mth(forked), r2, proof)).toBe(false);
          expect(verifyConsistency(first, second, r1, mth([...d.slice(0, second - 1), Buffer.from('x')]), proof)).toBe(
            false,
          );
        }
        if (first > 0 && first < second) {
          expect(verifyConsistency(first, second, r1, r2, proof.slice(0, -1))).toBe(false);
        }
      }),
    );
  });

  it('a proof reads O(log n) stored nodes', () => {
    const d = Array.from({ length: 1000 }, (_, i) => Buffer.from(String(i)));
    const { nodes } = built(d);
    const incl = proofNodeKeys((src) => inclusionProof(src, 377, 1000));
    const cons = proofNodeKeys((src) => consistencyProof(src, 377, 1000));
    expect(incl.length).toBeLessThanOrEqual(2 * 10);
    expect(cons.length).toBeLessThanOrEqual(2 * 10);
    expect(rootHash(nodes, 1000).equals(mth(d))).toBe(true);
  });
});
