import { DAY_MS, failed, pass, warn, type Finding } from './finding.ts';

/**
 * The Node.js release lines and the day each stops getting security fixes (the Node.js release
 * schedule, github.com/nodejs/release). Even lines become LTS; odd lines are short-lived "Current"
 * releases. A line missing here is newer than this table: reported as a warning to check by hand.
 */
export const NODE_END_OF_LIFE: ReadonlyMap<number, { readonly eol: string; readonly lts: boolean }> = new Map([
  [18, { eol: '2025-04-30', lts: true }],
  [19, { eol: '2023-06-01', lts: false }],
  [20, { eol: '2026-04-30', lts: true }],
  [21, { eol: '2024-06-01', lts: false }],
  [22, { eol: '2027-04-30', lts: true }],
  [23, { eol: '2025-06-01', lts: false }],
  [24, { eol: '2028-04-30', lts: true }],
  [25, { eol: '2026-06-01', lts: false }],
  [26, { eol: '2029-04-30', lts: true }],
]);

/** Warn this long before a line's end of life: time to plan the upgrade. */
export const NODE_EOL_NOTICE_DAYS = 180;

const ID = 'runtime.node';
const FIX_UPGRADE = 'upgrade to a supported LTS line (Node.js 24; package.json pins it for npm scripts) and restart';

/** The Node.js runtime against its end-of-life date. `version` is process.version ('v24.1.0'). */
export function checkNodeRuntime(version: string, now: Date): Finding {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  const line = NODE_END_OF_LIFE.get(major);
  if (line === undefined) {
    const oldest = Math.min(...NODE_END_OF_LIFE.keys());
    return Number.isInteger(major) && major < oldest
      ? failed(ID, `Node.js ${version} is past its end of life`, FIX_UPGRADE)
      : warn(ID, `Node.js ${version} is newer than the end-of-life table of this release of Custos`, 'check its support dates at nodejs.org/en/about/previous-releases; Custos is tested on Node.js 24');
  }
  const eol = new Date(`${line.eol}T00:00:00Z`);
  const left = Math.floor((eol.getTime() - now.getTime()) / DAY_MS);
  if (left <= 0) return failed(ID, `Node.js ${version} reached its end of life on ${line.eol}: no more security fixes`, FIX_UPGRADE);
  if (!line.lts) return warn(ID, `Node.js ${version} is a short-lived Current line (end of life ${line.eol}), not an LTS line`, FIX_UPGRADE);
  if (left <= NODE_EOL_NOTICE_DAYS) return warn(ID, `Node.js ${version} reaches its end of life on ${line.eol}, in ${left} days`, FIX_UPGRADE);
  return pass(ID, `Node.js ${version}, LTS, supported until ${line.eol}`);
}
