import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../../kernel/logger.ts';
import type { OcsfSink } from '../contracts.ts';
import { createLineQueue, serialise, type LineQueue } from './line-queue.ts';

/**
 * OCSF records as JSON lines appended to a file (CUSTOS_OCSF_FILE) that a SIEM agent tails. The
 * file is created with mode 0600 (its folder, when missing, 0700): records name accounts, API keys
 * and client addresses. Writes go through the bounded queue (line-queue.ts), so they never wait on
 * the disk. A rotated file (renamed or removed by logrotate) is noticed within a second and a new
 * one is opened at the path; `copytruncate` works as well, as every write appends.
 */
const ROTATION_CHECK_MS = 1_000;

export interface OcsfFileSink extends OcsfSink {
  /** Records dropped because the queue was full. */
  readonly dropped: number;
  /** Waits until what was written so far is on its way to disk (tests, shutdown). */
  flush(timeoutMs?: number): Promise<boolean>;
}

export function createOcsfFileSink(deps: {
  file: string;
  logger?: Logger | undefined;
  capacity?: number | undefined;
  /** How long close() waits for queued lines to be written (5 s). */
  closeTimeoutMs?: number | undefined;
  backoffMs?: { min: number; max: number } | undefined;
  rotationCheckMs?: number | undefined;
}): OcsfFileSink {
  const rotationCheckMs = deps.rotationCheckMs ?? ROTATION_CHECK_MS;
  let handle: FileHandle | undefined;
  let inode = 0;
  let checkedAt = 0;

  async function current(): Promise<FileHandle> {
    if (handle !== undefined && Date.now() - checkedAt >= rotationCheckMs) {
      checkedAt = Date.now();
      const now = await stat(deps.file).catch(() => undefined);
      if (now === undefined || now.ino !== inode) {
        await handle.close().catch(() => undefined);
        handle = undefined;
      }
    }
    if (handle === undefined) {
      await mkdir(dirname(deps.file), { recursive: true, mode: 0o700 });
      handle = await open(deps.file, 'a', 0o600);
      inode = (await handle.stat()).ino;
      checkedAt = Date.now();
    }
    return handle;
  }

  const queue: LineQueue = createLineQueue({
    name: 'ocsf-file',
    logger: deps.logger,
    capacity: deps.capacity,
    backoffMs: deps.backoffMs,
    async write(lines) {
      await (await current()).appendFile(Buffer.concat(lines));
    },
    reset() {
      const h = handle;
      handle = undefined;
      void h?.close().catch(() => undefined);
    },
  });

  return {
    write(record) {
      const line = serialise(record, deps.logger);
      if (line !== undefined) queue.push(Buffer.from(`${line}\n`));
    },
    get dropped() {
      return queue.dropped;
    },
    flush: (timeoutMs) => queue.flush(timeoutMs),
    async close() {
      await queue.close(deps.closeTimeoutMs);
      const h = handle;
      handle = undefined;
      await h?.close().catch(() => undefined);
    },
  };
}
