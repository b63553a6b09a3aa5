/**
 * In-process security events: what detection (src/modules/detection) watches. Every module that
 * decides something security-relevant emits here — authentication results, lockouts, policy
 * denials, reads of personal data with actor and purpose, API-key use, card reveals and relays,
 * audit-verify failures. Unlike the audit log, an event may carry the client address (`source`),
 * because detection needs it and the append-only log must not hold it.
 *
 * `emit` is cheap and never throws or awaits: listeners run after the current request's work, in
 * one batch per turn of the event loop, so detection stays off the request path.
 */
export type SecurityOutcome = 'success' | 'denied' | 'failure';

export interface SecurityEvent {
  readonly at: Date;
  /** The audit action name, e.g. `identity.authn_login_fail`, `vault.read`, `cards.reveal`. */
  readonly action: string;
  readonly outcome: SecurityOutcome;
  /** 'apikey:key_…', 'staff:…', 'customer:…', 'cli', 'system'; none for an unknown account. */
  readonly actor?: string | null;
  /** The client address; an IPv6 address reduced to its /64 (see `sourceOf`). */
  readonly source?: string | null;
  readonly subjectId?: string | null;
  readonly collection?: string | null;
  readonly recordId?: string | null;
  readonly purpose?: string | null;
  /** Field names, never values. */
  readonly fields?: readonly string[];
  readonly requestId?: string | null;
  /** Non-personal details (a rule's inputs: the email's blind index, a relay target's origin, a status). */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

export type SecurityListener = (events: readonly SecurityEvent[]) => void | Promise<void>;

export interface SecurityEvents {
  emit(event: SecurityEvent): void;
  /** Adds a listener; returns its removal. */
  on(listener: SecurityListener): () => void;
  /** Hands what is queued to the listeners and waits for them (shutdown, tests). */
  flush(): Promise<void>;
}

/** A client address as detection keys it: IPv4 as is, IPv6 by its /64 (one host often holds the whole /64). */
export function sourceOf(address: string | undefined | null): string | null {
  if (address === undefined || address === null || address === '') return null;
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4mapped !== null) return v4mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g === '' ? '0' : g.toLowerCase().replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}

export function createSecurityEvents(onListenerError: (error: unknown) => void = () => undefined): SecurityEvents {
  const listeners = new Set<SecurityListener>();
  let queue: SecurityEvent[] = [];
  let scheduled = false;
  let running: Promise<void> = Promise.resolve();

  const drain = async (): Promise<void> => {
    scheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    for (const listener of listeners) {
      try {
        await listener(batch);
      } catch (error) {
        onListenerError(error);
      }
    }
  };

  return {
    emit(event) {
      if (listeners.size === 0) return;
      queue.push(event);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        running = running.then(drain);
      });
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async flush() {
      running = running.then(drain);
      await running;
    },
  };
}
