import yauzl from 'yauzl';
import { authApp, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../identity/helpers.ts';
import { person } from '../vault/helpers.ts';

/** A whole Custos for the rights suites, with a key scoped to `rights` and a shop key that stores and keeps records. */
export interface RightsTest {
  readonly t: AuthTest;
  /** Authorization header of an API key scoped to `rights` only. */
  readonly rights: string;
  /** Authorization header of a shop key: account, fulfilment, legal_obligation (no `rights`). */
  readonly shop: string;
}

export async function rightsApp(env: Record<string, string> = {}): Promise<RightsTest> {
  const t = await authApp(env);
  return { t, rights: await t.bearer(['rights']), shop: await t.bearer(['account', 'fulfilment', 'legal_obligation']) };
}

/** The rights API as a shop backend calls it: bearer key, optional JSON body and headers. */
export function apiCall(t: AuthTest) {
  return (method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, auth: string, payload?: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.app.inject({ method, url, headers: { authorization: auth, ...headers }, ...(payload === undefined ? {} : { payload }) });
}

/** Every entry of a ZIP archive, by name, as UTF-8 text (yauzl checks each entry's CRC-32). */
export function unzip(archive: Buffer): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(archive, { lazyEntries: true }, (error, zip) => {
      if (error !== null) return reject(error);
      const files = new Map<string, string>();
      zip.on('error', reject);
      zip.on('end', () => resolve(files));
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (err, stream) => {
          if (err !== null) return reject(err);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            files.set(entry.fileName, Buffer.concat(chunks).toString('utf8'));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** A CSV file as rows of cells (RFC 4180: quoted cells, doubled quotes, CRLF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(cell), (cell = '');
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      (row = []), (cell = ''), i++;
    } else cell += ch;
  }
  return rows;
}

/** Stores `n` orders for a customer through the vault service (as the shop's key would), a batch at a time. */
export async function manyOrders(app: AuthTest, customerId: string, n: number): Promise<string[]> {
  const ctx = { actor: { ref: 'apikey:seed', kind: 'apikey' as const, purposes: ['account'] }, purpose: undefined, requestId: 'seed' };
  const order = person().order;
  const ids: string[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from({ length: Math.min(200, n - i) }, (_, j) =>
      app.runtime.vault.create(ctx, 'orders', customerId, { ...order, number: `SO-${String(i + j).padStart(6, '0')}`, total: `${(i + j) % 1000}.50` }),
    );
    ids.push(...(await Promise.all(batch)).map((r) => r.id));
  }
  return ids;
}

/** A signed-in staff member of `role` with training recorded and a second factor enrolled; their cookie jar. */
export async function staffSession(t: AuthTest, role: string) {
  const { email } = await staffMember(t, role, { trainedOn: t.clock.now().toISOString().slice(0, 10) });
  const { jar } = await signIn(t, email, STRONG, undefined, '/v1/staff/auth');
  await enrolTotp(t, jar, '/v1/staff/auth');
  return jar;
}
