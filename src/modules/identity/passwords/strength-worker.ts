import { parentPort } from 'node:worker_threads';
import { z } from 'zod';
import { estimateStrength } from './password-strength.ts';

/** Worker-thread entry of the strength estimator: one request at a time, answered by id. */
const Request = z.object({ id: z.number().int(), password: z.string(), userInputs: z.array(z.string()) });

parentPort?.on('message', (message: unknown) => {
  const parsed = Request.safeParse(message);
  if (!parsed.success) return;
  const { id, password, userInputs } = parsed.data;
  try {
    parentPort?.postMessage({ id, ok: true, strength: estimateStrength(password, userInputs) });
  } catch {
    parentPort?.postMessage({ id, ok: false });
  }
});
