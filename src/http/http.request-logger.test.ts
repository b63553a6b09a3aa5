import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../kernel/logger.ts';
import { lazyRequestLogger } from './request-logger.ts';

/** The request logger made on first use writes what pino's child would: the request id, redacted fields. */
function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('request logger', () => {
  it('binds the request id and keeps redaction, as the child it stands for', () => {
    const out = capture();
    const base = createLogger('info', out.stream);
    const log = lazyRequestLogger(base, { reqId: 'req-1' }, {});
    log.error({ code: 'X', headers: { authorization: 'Bearer secret' }, customer: { email: 'a@b.example' } }, 'request failed');
    log.debug({ code: 'Y' }, 'below the level');
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ reqId: 'req-1', code: 'X', headers: '[redacted]', customer: { email: '[redacted]' }, msg: 'request failed' });
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('has its parent level until it is used, and children of its own', () => {
    const out = capture();
    const log = lazyRequestLogger(createLogger('warn', out.stream), { reqId: 'req-2' }, {});
    expect(log.level).toBe('warn');
    log.child({ step: 'x' }, {}).warn('inner');
    expect(out.lines()[0]).toMatchObject({ reqId: 'req-2', step: 'x', msg: 'inner' });
  });
});
