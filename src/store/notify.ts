import pg from 'pg';
import type { Config } from '../config/config.ts';

/**
 * A PostgreSQL LISTEN on one channel of this service's schema (several services, or test runs,
 * share a database in different schemas and must not hear each other). `live` is true only while
 * the LISTEN is in place: a cache that relies on the notifications must not trust itself
 * otherwise, because a notification sent while the connection was down is lost. Every loss and
 * every (re)connection counts as a notification, so the cache starts over. Reconnects after a
 * second; the connection never keeps the process alive.
 */
export interface ChannelWatch {
  readonly live: boolean;
  close(): Promise<void>;
}

/** The channel name for `name` in the schema a connection with this search_path works in. */
export const channelSql = (name: string) => `current_schema() || '.${name}'`;

export function watchChannel(
  database: Extract<Config['database'], { kind: 'postgres' }>,
  name: string,
  onNotify: () => void,
  onError?: (error: unknown) => void,
): ChannelWatch {
  let live = false;
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;

  const lost = (error?: unknown) => {
    if (error !== undefined && !closed) onError?.(error);
    live = false;
    onNotify();
    const c = client;
    client = undefined;
    c?.removeAllListeners();
    c?.on('error', () => undefined);
    void c?.end().catch(() => undefined);
    if (!closed && retry === undefined) {
      retry = setTimeout(() => {
        retry = undefined;
        void connect();
      }, 1000);
      retry.unref();
    }
  };

  async function connect(): Promise<void> {
    if (closed) return;
    const c = new pg.Client({
      connectionString: database.url.reveal(),
      keepAlive: true,
      ...(database.schema === undefined ? {} : { options: `-c search_path=${database.schema}` }),
    });
    client = c;
    c.on('error', (error) => lost(error));
    c.on('end', () => {
      if (client === c) lost();
    });
    c.on('notification', () => onNotify());
    try {
      await c.connect();
      const channel = (await c.query<{ channel: string }>(`SELECT ${channelSql(name)} AS channel`)).rows[0]!.channel;
      await c.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
      // The socket must not hold the process open (CLI commands, tests).
      (c as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
      if (client !== c || closed) return;
      onNotify();
      live = true;
    } catch (error) {
      if (client === c) lost(error);
    }
  }

  void connect();
  return {
    get live() {
      return live;
    },
    async close() {
      closed = true;
      live = false;
      if (retry !== undefined) clearTimeout(retry);
      const c = client;
      client = undefined;
      c?.removeAllListeners();
      c?.on('error', () => undefined);
      await c?.end().catch(() => undefined);
    },
  };
}
