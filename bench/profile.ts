import { readFileSync } from 'node:fs';

/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the server's time went during a
 * window: self time per function, and inclusive time per area of the code (a sample counts for
 * every area on its stack, so areas overlap; `(idle)` is time the event loop waited).
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly sampledMs: number;
  readonly areas: readonly { area: string; ms: number; share: number }[];
  readonly functions: readonly { fn: string; ms: number; share: number }[];
}

/** Areas of the stack, most specific first; the first match names a frame. */
const AREAS: readonly [string, RegExp][] = [
  ['API key check (src/http/auth.ts, apikeys)', /src\/http\/auth\.ts|src\/modules\/apikeys\//],
  ['audit log (src/modules/audit)', /src\/modules\/audit\//],
  ['field encrypt/decrypt + mask (vault codec, aead, mask)', /src\/modules\/vault\/codec\.ts|src\/crypto\/aead\.ts|inventory\/mask\.ts/],
  ['data keys (key-store)', /src\/crypto\/key-store\.ts/],
  ['blind index HMAC', /src\/crypto\/blind-index\.ts/],
  ['policy decision', /src\/modules\/policy\//],
  ['vault service (all of it)', /src\/modules\/vault\/service\.ts/],
  ['request validation (zod)', /node_modules\/zod\//],
  ['response serialisation', /fastify-type-provider-zod|fast-json-stringify|node_modules\/fastify\/lib\/(reply|content-type)/],
  ['rate limit', /@fastify\/rate-limit/],
  ['helmet', /@fastify\/helmet|node_modules\/helmet/],
  ['Kysely', /node_modules\/kysely\//],
  ['pg driver', /node_modules\/(pg|pg-protocol|pg-pool|pg-types)\//],
  ['better-sqlite3', /node_modules\/better-sqlite3\//],
  ['Fastify core', /node_modules\/fastify\/|find-my-way|avvio|light-my-request/],
  ['node http', /^node:_http|^node:http/],
  ['node net/streams', /^node:(net|stream|internal\/stream)/],
];

const short = (url: string) => url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/').replace(/^node:/, '');

export function summarise(file: string, window?: readonly [number, number]): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const areaOf = new Map<number, Set<string>>();
  const stackAreas = (id: number): Set<string> => {
    const known = areaOf.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    const up = parent.get(id);
    const set = new Set(up === undefined ? [] : stackAreas(up));
    const { url, functionName } = node.callFrame;
    const hit = AREAS.find(([, re]) => re.test(url));
    if (hit !== undefined) set.add(hit[0]);
    if (['(garbage collector)', '(idle)', '(program)'].includes(functionName)) set.add(functionName);
    areaOf.set(id, set);
    return set;
  };

  const selfUs = new Map<string, number>();
  const areaUs = new Map<string, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t < window[0] || t > window[1])) continue;
    // Each sample stands for the time until the next one.
    const span = p.timeDeltas[i + 1] ?? dt;
    const node = byId.get(p.samples[i]!)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url === '' ? '' : `${short(url)}:${lineNumber + 1}`}`.trim();
    selfUs.set(key, (selfUs.get(key) ?? 0) + span);
    for (const a of stackAreas(node.id)) areaUs.set(a, (areaUs.get(a) ?? 0) + span);
    total += span;
  }
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    sampledMs: total / 1000,
    areas: rank(areaUs).map(([area, us]) => ({ area, ms: us / 1000, share: total === 0 ? 0 : us / total })),
    functions: rank(selfUs)
      .slice(0, 25)
      .map(([fn, us]) => ({ fn, ms: us / 1000, share: total === 0 ? 0 : us / total })),
  };
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  const lines = [`## ${title}: ${Math.round(s.sampledMs)} ms sampled`, '', 'inclusive, by area:'];
  for (const a of s.areas) lines.push(`  ${pct(a.share)}  ${a.area}`);
  lines.push('', 'self time, top functions:');
  for (const f of s.functions) lines.push(`  ${pct(f.share)}  ${f.fn}`);
  return lines.join('\n');
}
