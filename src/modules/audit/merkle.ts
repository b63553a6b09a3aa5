import { hash } from 'node:crypto';
import { pathStep } from './merkle-path.ts';

/*
 * The Merkle tree of RFC 9162 §2.1: leaf hash SHA-256(0x00 ‖ leaf), node hash
 * SHA-256(0x01 ‖ left ‖ right), the tree hash of an empty list SHA-256 of nothing. Inclusion
 * proofs (§2.1.3) and consistency proofs (§2.1.4) with their verifiers, exactly as specified.
 *
 * Pure: no storage. Proofs are built from a `NodeSource`, which returns the hash of a perfect
 * subtree (2^level leaves starting at leaf index·2^level). A tree stored as its perfect
 * subtrees therefore answers every proof from O(log n) nodes; `proofNodeKeys` names them so a
 * caller can fetch them in one query before building the proof.
 */

export type Hash = Buffer;
export type NodeSource = (level: number, index: number) => Hash;

export const HASH_SIZE = 32;

/** One-shot SHA-256 (no Hash object per call: the builder and the verifier hash every leaf and node). */
function sha256(...parts: Uint8Array[]): Hash {
  return hash('sha256', parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'buffer');
}

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export function emptyRoot(): Hash {
  return sha256();
}

export function leafHash(leaf: Uint8Array): Hash {
  return sha256(LEAF_PREFIX, leaf);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  return sha256(NODE_PREFIX, left, right);
}

/** The largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer`);
}

/**
 * MTH(D[lo:hi]) from perfect subtrees. Every range a proof asks for starts at a multiple of the
 * largest power of two not above its length, so it splits into perfect subtrees left to right.
 */
export function rangeHash(nodes: NodeSource, lo: number, hi: number): Hash {
  const n = hi - lo;
  if (n <= 0) throw new RangeError('empty range');
  if (isPowerOfTwo(n) && lo % n === 0) {
    const level = Math.log2(n);
    return nodes(level, lo / n);
  }
  const k = splitPoint(n);
  return nodeHash(rangeHash(nodes, lo, lo + k), rangeHash(nodes, lo + k, hi));
}

/** MTH(D[0:n]), the root of the tree of size n. */
export function rootHash(nodes: NodeSource, n: number): Hash {
  checkSize(n, 'tree size');
  return n === 0 ? emptyRoot() : rangeHash(nodes, 0, n);
}

/** PATH(m, D[n]) of RFC 9162 §2.1.3.1, over the leaves [lo, lo+n). */
function path(nodes: NodeSource, m: number, lo: number, n: number): Hash[] {
  if (n === 1) return [];
  const k = splitPoint(n);
  if (m < k) return [...path(nodes, m, lo, k), rangeHash(nodes, lo + k, lo + n)];
  return [...path(nodes, m - k, lo + k, n - k), rangeHash(nodes, lo, lo + k)];
}

/** The inclusion proof of leaf `index` in the tree of size `treeSize`. */
export function inclusionProof(nodes: NodeSource, index: number, treeSize: number): Hash[] {
  checkSize(index, 'leaf index');
  checkSize(treeSize, 'tree size');
  if (index >= treeSize) throw new RangeError('leaf index beyond the tree');
  return path(nodes, index, 0, treeSize);
}

/** SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, over the leaves [lo, lo+n). */
function subproof(nodes: NodeSource, m: number, lo: number, n: number, complete: boolean): Hash[] {
  if (m === n) return complete ? [] : [rangeHash(nodes, lo, lo + n)];
  const k = splitPoint(n);
  if (m <= k) return [...subproof(nodes, m, lo, k, complete), rangeHash(nodes, lo + k, lo + n)];
  return [...subproof(nodes, m - k, lo + k, n - k, false), rangeHash(nodes, lo, lo + k)];
}

/** The consistency proof between the trees of sizes `first` ≤ `second`; empty when first is 0 or equal. */
export function consistencyProof(nodes: NodeSource, first: number, second: number): Hash[] {
  checkSize(first, 'first tree size');
  checkSize(second, 'second tree size');
  if (first > second) throw new RangeError('first tree size beyond the second');
  if (first === 0 || first === second) return [];
  return subproof(nodes, first, 0, second, true);
}

/** The perfect-subtree keys `build` reads, so they can be fetched together first. */
export function proofNodeKeys(build: (nodes: NodeSource) => unknown): Array<{ level: number; index: number }> {
  const seen = new Map<string, { level: number; index: number }>();
  const zero = Buffer.alloc(HASH_SIZE);
  build((level, index) => {
    seen.set(`${level}:${index}`, { level, index });
    return zero;
  });
  return [...seen.values()];
}

/** RFC 9162 §2.1.3.2. True when `leaf` (its leaf hash) sits at `index` of the tree with `root`. */
export function verifyInclusion(index: number, treeSize: number, leafHashValue: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r: Uint8Array = leafHashValue;
  for (const p of proof) {
    if (sn === 0) return false;
    const step = pathStep(fn, sn);
    r = step.left ? nodeHash(p, r) : nodeHash(r, p);
    ({ fn, sn } = step);
  }
  return sn === 0 && equalHash(r, root);
}

/** RFC 9162 §2.1.4.2. True when the tree (second, secondRoot) extends the tree (first, firstRoot). */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false;
  if (first === second) return proof.length === 0 && equalHash(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path: Uint8Array[] = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const [head, ...rest] = path;
  if (head === undefined) return false;
  let fr: Uint8Array = head;
  let sr: Uint8Array = head;
  for (const c of rest) {
    if (sn === 0) return false;
    const step = pathStep(fn, sn);
    if (step.left) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
    } else {
      sr = nodeHash(sr, c);
    }
    ({ fn, sn } = step);
  }
  return sn === 0 && equalHash(fr, firstRoot) && equalHash(sr, secondRoot);
}

function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === HASH_SIZE && b.length === HASH_SIZE && Buffer.compare(a, b) === 0;
}

/**
 * The right edge of a tree: the perfect subtrees of its binary decomposition, largest first.
 * Appending a leaf stores its hash and every node it completes; `append` returns them so the
 * caller can persist them. The root of the current size folds the frontier from the right.
 */
export interface StoredNode {
  level: number;
  index: number;
  hash: Hash;
}

export class Frontier {
  size: number;
  private readonly nodes: StoredNode[];

  constructor(size: number, nodes: StoredNode[]) {
    this.size = size;
    this.nodes = nodes;
  }

  /** The keys of the frontier of a tree of `size`, to load it from stored nodes. */
  static keys(size: number): Array<{ level: number; index: number }> {
    const out: Array<{ level: number; index: number }> = [];
    let offset = 0;
    for (let level = 52; level >= 0; level--) {
      const span = 2 ** level;
      if (Math.floor(size / span) % 2 === 1) {
        out.push({ level, index: offset / span });
        offset += span;
      }
    }
    return out;
  }

  static load(size: number, nodes: NodeSource): Frontier {
    return new Frontier(size, Frontier.keys(size).map(({ level, index }) => ({ level, index, hash: nodes(level, index) })));
  }

  append(leafHashValue: Hash): StoredNode[] {
    const created: StoredNode[] = [];
    let node: StoredNode = { level: 0, index: this.size, hash: leafHashValue };
    created.push(node);
    while (node.index % 2 === 1) {
      const left = this.nodes.pop();
      if (left === undefined || left.level !== node.level) throw new Error('merkle frontier out of step');
      node = { level: node.level + 1, index: Math.floor(node.index / 2), hash: nodeHash(left.hash, node.hash) };
      created.push(node);
    }
    this.nodes.push(node);
    this.size += 1;
    return created;
  }

  root(): Hash {
    if (this.nodes.length === 0) return emptyRoot();
    let r: Hash | undefined;
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i] as StoredNode;
      r = r === undefined ? n.hash : nodeHash(n.hash, r);
    }
    return r as Hash;
  }
}
