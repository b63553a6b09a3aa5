import { authApp, type AuthTest } from '../identity/helpers.ts';

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
  return (method: 'GET' | 'POST' | 'DELETE', url: string, auth: string, payload?: Record<string, unknown>, headers: Record<string, string> = {}) =>
    t.app.inject({ method, url, headers: { authorization: auth, ...headers }, ...(payload === undefined ? {} : { payload }) });
}
