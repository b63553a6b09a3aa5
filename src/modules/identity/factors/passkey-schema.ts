import { z } from 'zod';

/**
 * The browser's WebAuthn JSON, checked for shape before anything else looks at it (ASVS 2.2.1):
 * base64url strings of bounded length, the one credential type, and the challenge read out of
 * clientDataJSON so that the pending challenge can be found and taken.
 */
const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*$/, 'must be base64url');

const extensions = z.record(z.string(), z.unknown());

export const RegistrationResponse = z.object({
  id: b64url.min(1),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url,
    attestationObject: b64url,
    authenticatorData: b64url.optional(),
    transports: z.array(z.string().max(32)).max(8).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: b64url.optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: extensions,
});

export const AuthenticationResponse = z.object({
  id: b64url.min(1),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: b64url.optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: extensions,
});

const ClientData = z.object({ challenge: z.string().min(16).max(256).regex(/^[A-Za-z0-9_-]+$/) });

/** The challenge the client says it answers, or undefined when clientDataJSON is not what it should be. */
export function challengeOf(clientDataJSON: string): string | undefined {
  try {
    const parsed = ClientData.safeParse(JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data.challenge : undefined;
  } catch {
    return undefined;
  }
}
