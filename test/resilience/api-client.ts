/**
 * A small client of the vault API over real sockets (global fetch), for tests that drive a child
 * server. Network failures are returned as status 0, never thrown, so that a load can tell an
 * acknowledged write (2xx received) from one whose fate is unknown.
 */
export interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

export interface ApiClient {
  post(path: string, body: unknown, purpose?: string): Promise<Reply>;
  patch(path: string, body: unknown, purpose?: string): Promise<Reply>;
  get(path: string, purpose?: string): Promise<Reply>;
  /** Anything else: a raw body (e.g. broken JSON) and extra headers. */
  send(method: string, path: string, init: { body?: string; headers?: Record<string, string> }): Promise<Reply>;
}

export function apiClient(baseUrl: string, key: string, timeoutMs = 15_000): ApiClient {
  async function send(method: string, path: string, init: { body?: string; headers?: Record<string, string> }): Promise<Reply> {
    try {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      let body: unknown = undefined;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body, text };
    } catch (error) {
      return { status: 0, body: undefined, text: error instanceof Error ? error.message : String(error) };
    }
  }
  const json = (method: string) => (path: string, body: unknown, purpose?: string) =>
    send(method, path, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(purpose === undefined ? {} : { 'custos-purpose': purpose }) },
    });
  return {
    post: json('POST'),
    patch: json('PATCH'),
    get: (path, purpose) => send('GET', path, { headers: purpose === undefined ? {} : { 'custos-purpose': purpose } }),
    send,
  };
}

export function idOf(reply: Reply): string {
  const id = (reply.body as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'string') throw new Error(`no id in reply ${reply.status}: ${reply.text}`);
  return id;
}
