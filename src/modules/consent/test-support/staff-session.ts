import { CookieJar, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../../../../test/identity/helpers.ts';

/** A signed-in staff member of `role` with training recorded and a verified second factor: a cookie jar. */
export async function staffSession(t: AuthTest, role: string): Promise<CookieJar> {
  const { email } = await staffMember(t, role, { trainedOn: t.clock.now().toISOString().slice(0, 10) });
  const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
  await enrolTotp(t, jar, '/v1/staff/auth');
  return jar;
}
