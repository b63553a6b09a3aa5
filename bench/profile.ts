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

type Share = { name: string; ms: number; share: number };
export interface ProfileSummary {
  readonly sampledMs: number;
  /** Every sample once, charged to the innermost Custos area on its stack (else a library). */
  readonly charged: readonly Share[];
  /** Every sample once, charged to the innermost function of src/ on its stack. */
  readonly custosFunctions: readonly Share[];
  /** A sample counts for every area on its stack (areas overlap). */
  readonly areas: readonly Share[];
  readonly functions: readonly Share[];
}

/** Custos's own areas; the innermost one on a stack is charged with the sample. */
const CUSTOS_AREAS: readonly [string, RegExp][] = [
  ['API key check', /src\/http\/auth\.ts|src\/modules\/apikeys\//],
  ['audit log', /src\/modules\/audit\//],
  ['field decrypt/encrypt (codec, aead)', /src\/modules\/vault\/codec\.ts|src\/crypto\/aead\.ts/],
  ['masking', /inventory\/mask\.ts/],
  ['data keys (key-store)', /src\/crypto\/key-store\.ts/],
  ['blind index HMAC', /src\/crypto\/blind-index\.ts/],
  ['policy decision', /src\/modules\/policy\//],
  ['inventory schemas (validation)', /src\/modules\/inventory\//],
  ['vault service (queries, JSON, views)', /src\/modules\/vault\//],
  ['app hooks (src/app.ts, error handler)', /src\/app\.ts|src\/http\//],
];

/** Library areas, for samples with no Custos frame on the stack. */
const LIB_AREAS: readonly [string, RegExp][] = [
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

const AREAS = [...CUSTOS_AREAS, ...LIB_AREAS];

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

  const chargeOf = new Map<number, [string, string]>();
  const charge = (id: number): [string, string] => {
    const known = chargeOf.get(id);
    if (known !== undefined) return known;
    let lib: string | undefined;
    let out: [string, string] | undefined;
    for (let at: number | undefined = id; at !== undefined && out === undefined; at = parent.get(at)) {
      const { url, functionName, lineNumber } = byId.get(at)!.callFrame;
      const mine = CUSTOS_AREAS.find(([, re]) => re.test(url));
      if (mine !== undefined) out = [mine[0], `${functionName || '(anonymous)'} ${short(url)}:${lineNumber + 1}`];
      else lib ??= LIB_AREAS.find(([, re]) => re.test(url))?.[0];
    }
    const leaf = byId.get(id)!.callFrame.functionName;
    const special = ['(garbage collector)', '(idle)', '(program)'].includes(leaf) ? leaf : undefined;
    const result: [string, string] = out ?? [special ?? lib ?? 'other', `(no src frame) ${special ?? lib ?? 'other'}`];
    chargeOf.set(id, result);
    return result;
  };

  const chargedUs = new Map<string, number>();
  const custosUs = new Map<string, number>();
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
    const [area, fn] = charge(node.id);
    chargedUs.set(area, (chargedUs.get(area) ?? 0) + span);
    custosUs.set(fn, (custosUs.get(fn) ?? 0) + span);
    total += span;
  }
  const rank = (m: Map<string, number>, top = 40): Share[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: total === 0 ? 0 : us / total }));
  return { sampledMs: total / 1000, charged: rank(chargedUs), custosFunctions: rank(custosUs, 25), areas: rank(areaUs), functions: rank(selfUs, 25) };
}

/** `requests` turns shares into time per request (sampled ms / requests served in the window). */
export function formatSummary(title: string, s: ProfileSummary, requests: number): string {
  const perReq = (ms: number) => (requests > 0 ? `${((ms * 1000) / requests).toFixed(0).padStart(6)} µs/req` : '');
  const line = (x: Share) => `  ${(x.share * 100).toFixed(1).padStart(5)} %  ${perReq(x.ms)}  ${x.name}`;
  const lines = [`## ${title}: ${Math.round(s.sampledMs)} ms sampled over ${requests} requests`, ''];
  lines.push('charged to the innermost Custos area on the stack (sums to 100 %):', ...s.charged.map(line));
  lines.push('', 'charged to the innermost Custos function:', ...s.custosFunctions.map(line));
  lines.push('', 'inclusive, by area (overlapping):', ...s.areas.map(line));
  lines.push('', 'self time, top functions:', ...s.functions.map(line));
  return lines.join('\n');
}
