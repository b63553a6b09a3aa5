import type { Runtime } from '../../runtime.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import type { MemberInfo } from '../staff/member-service.ts';
import { DAY_MS, lines, pass, plural, some, warn, type Finding } from './finding.ts';

/**
 * Who can get in, and with what: staff without a second factor (PCI DSS 4.0.1 8.4.2; the guard
 * already refuses them personal data, but a password alone still opens the account and lets its
 * holder enrol a factor of their choosing), live staff sessions without a verified second factor,
 * staff whose required training is missing or expired (PCI DSS 12.6.3; the guard refuses them
 * too), and API keys nobody has used for 90 days (a credential no one watches). Findings name
 * member and key ids, never an email.
 */
export const API_KEY_UNUSED_DAYS = 90;

type Deps = Pick<Runtime, 'staff' | 'identity' | 'apiKeys' | 'clock'>;

/** Members who can sign in (invited members have no password yet; suspended ones are locked out). */
const active = (members: readonly MemberInfo[]) => members.filter((m) => m.status === 'active');

export async function checkStaffMfa(runtime: Deps, members: readonly MemberInfo[]): Promise<Finding> {
  const id = 'staff.mfa';
  const live = active(members);
  const without = live.filter((m) => !m.mfaEnrolled);
  if (without.length > 0)
    return warn(
      id,
      `${plural(without.length, 'active staff member')} without a second factor: ${some(without.map((m) => m.id))}`,
      'each enrols an authenticator app or a passkey at their next sign-in (PCI DSS 4.0.1 8.4.2); whoever should not, custos staff suspend --email E',
    );
  return pass(id, live.length === 0 ? 'no active staff members' : `all ${plural(live.length, 'active staff member')} have a second factor`);
}

export async function checkStaffSessions(runtime: Deps, members: readonly MemberInfo[]): Promise<Finding> {
  const id = 'staff.sessions';
  const holders: string[] = [];
  let sessions = 0;
  let total = 0;
  for (const m of members) {
    const live = await runtime.identity.sessions.list(m.accountId);
    total += live.length;
    const bare = live.filter((s) => s.mfaVerifiedAt === null);
    if (bare.length === 0) continue;
    sessions += bare.length;
    holders.push(m.id);
  }
  if (sessions > 0)
    return warn(
      id,
      `${plural(sessions, 'live staff session')} without a verified second factor (members ${some(holders)})`,
      'such a session can only enrol a factor; if the member did not sign in, suspend them at once (custos staff suspend --email E: their sessions stop working) and reset their password',
    );
  return pass(id, total === 0 ? 'no live staff session' : `${plural(total, 'live staff session')}, each with a verified second factor`);
}

export async function checkTraining(runtime: Deps, members: readonly MemberInfo[]): Promise<Finding> {
  const id = 'staff.training';
  const courses = await runtime.staff.training.listCourses();
  const live = active(members);
  if (courses.length === 0)
    return live.length === 0
      ? pass(id, 'no staff members and no training courses')
      : warn(id, `no training course is defined for ${plural(live.length, 'active staff member')}`, 'define the security awareness course: custos staff training course add --course security_awareness --required-for all (PCI DSS 4.0.1 12.6.1)');
  const statuses = (await runtime.staff.training.statusAll(CLI_OPERATOR)).filter((s) => s.status !== 'suspended');
  const expired = statuses.filter((s) => s.courses.some((c) => c.required && c.state === 'expired')).map((s) => s.memberId);
  const missing = statuses.filter((s) => !expired.includes(s.memberId) && s.courses.some((c) => c.required && c.state === 'missing')).map((s) => s.memberId);
  const problems: string[] = [];
  if (expired.length > 0) problems.push(`${plural(expired.length, 'member')} with expired training: ${some(expired)}`);
  if (missing.length > 0) problems.push(`${plural(missing.length, 'member')} without a required course: ${some(missing)}`);
  if (problems.length > 0)
    return warn(id, `${lines(problems)} (refused personal data until recorded)`, 'record each completion: custos staff training complete --email E --course C --date YYYY-MM-DD (PCI DSS 4.0.1 12.6.3: at least once every 12 months)');
  return pass(id, statuses.length === 0 ? 'no staff members to train' : `the required training of ${plural(statuses.length, 'staff member')} is current`);
}

export async function checkApiKeys(runtime: Deps, isDecoy: (keyId: string) => boolean = () => false): Promise<Finding> {
  const id = 'apikeys.unused';
  const now = runtime.clock.now().getTime();
  const keys = (await runtime.apiKeys.list()).filter((k) => k.revoked_at === null && !isDecoy(k.id));
  const idle = keys.filter((k) => now - Date.parse(k.last_used_at ?? k.created_at) > API_KEY_UNUSED_DAYS * DAY_MS);
  if (idle.length > 0)
    return warn(
      id,
      `${plural(idle.length, 'API key')} unused for ${API_KEY_UNUSED_DAYS} days or more: ${some(idle.map((k) => `${k.id} (${k.name.slice(0, 40)}, last used ${k.last_used_at?.slice(0, 10) ?? 'never'})`))}`,
      'revoke each key nothing uses any more: custos apikey revoke ID (custos apikey list shows their last use)',
    );
  return pass(id, keys.length === 0 ? 'no active API key' : `${plural(keys.length, 'active API key')}, each used within ${API_KEY_UNUSED_DAYS} days`);
}
