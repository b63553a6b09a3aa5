/* No imports: shared by merkle.ts and the browser verifier (browser-verify.ts). */

/**
 * Steps 4b–4c of §2.1.3.2 (and 6b–6c of §2.1.4.2): whether the next path element is a left
 * sibling, and fn, sn after it.
 */
export function pathStep(fn0: number, sn0: number): { left: boolean; fn: number; sn: number } {
  let fn = fn0;
  let sn = sn0;
  const left = fn % 2 === 1 || fn === sn;
  if (left && fn % 2 === 0) {
    while (fn % 2 === 0 && fn !== 0) {
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
  }
  return { left, fn: Math.floor(fn / 2), sn: Math.floor(sn / 2) };
}

