import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Severity } from './contracts.ts';

/**
 * The shipped rules and their settings. Every rule works out of the box with static defaults
 * (the issue's example: 20 accounts from one source in 5 minutes); a shop overrides any of them in
 * a YAML or JSON file named by CUSTOS_DETECTION_RULES, key by key (what it leaves out keeps its
 * default). Durations are written `30s`, `5m`, `1h`, `7d` (or a number of seconds).
 *
 * Every rule has `enabled`, `severity`, `responses` and `alert_only`. `responses` lists what a new
 * alert of the rule does besides being recorded and audited: `alert` (sent to the outputs:
 * webhook, mail, NATS), `lock_account`, `lock_apikey`, `require_step_up`, `block_source` (for
 * `block_for`). A response that does not fit the alert (no API key to lock, no source to block)
 * is skipped. `alert_only: true` records and sends the alert and takes no action.
 */
export const RESPONSES = ['alert', 'lock_account', 'lock_apikey', 'require_step_up', 'block_source'] as const;
export type Response = (typeof RESPONSES)[number];

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30s`, `5m`, `1h`, `7d` or a number of seconds, as milliseconds. */
export const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d{1,7}[smhd]$/, 'a duration such as 30s, 5m, 1h or 7d')])
  .transform((v) => (typeof v === 'number' ? v * 1000 : Number(v.slice(0, -1)) * UNIT_MS[v.at(-1) as keyof typeof UNIT_MS]));

const severity = z.enum(['low', 'medium', 'high', 'critical']);
const count = z.number().int().positive();

function rule<const S extends z.ZodRawShape>(defaults: { severity: Severity; responses: Response[] }, shape: S) {
  const settings = z
    .object({
      enabled: z.boolean().default(true),
      severity: severity.default(defaults.severity),
      responses: z.array(z.enum(RESPONSES)).max(RESPONSES.length).default(defaults.responses),
      alert_only: z.boolean().default(false),
      block_for: duration.prefault('1h'),
      ...shape,
    })
    .strict();
  // Every key has a default, so an absent rule is its defaults (TypeScript cannot see that through the generic shape).
  return settings.prefault({} as z.input<typeof settings>);
}

export const RulesSchema = z
  .object({
    /** Days of hourly counters the learned rates and hours look back on (the issue: 30). */
    history: duration.prefault('30d'),
    /** From the first start with detection: rules that rest on learned figures only alert. */
    learning_period: duration.prefault('7d'),
    /** Days of activity an actor needs in the history before its learned figures are used. */
    min_history_days: count.default(5),
    rules: z
      .object({
        /** Failed sign-ins on one account (known or not) within `window`. */
        brute_force: rule({ severity: 'high', responses: ['alert'] }, { threshold: count.default(10), window: duration.prefault('15m') }),
        /**
         * Failed sign-ins on `accounts` distinct accounts from one source within `window`; or,
         * service-wide, a failure ratio of sign-ins at least `ratio_floor` and `ratio_factor`
         * times the learned usual ratio over at least `ratio_min_attempts` attempts in `window`.
         */
        credential_stuffing: rule(
          { severity: 'high', responses: ['alert', 'block_source'] },
          {
            accounts: count.default(20),
            window: duration.prefault('5m'),
            ratio_min_attempts: count.default(100),
            ratio_floor: z.number().min(0).max(1).default(0.5),
            ratio_factor: z.number().min(1).default(3),
          },
        ),
        /**
         * Distinct customers read by one staff member or API key within `window`: more than
         * `threshold` until the actor has `min_history_days` of history, then more than `factor`
         * times its learned usual peak per hour (scaled to the window; never less than `min_count`).
         */
        bulk_read: rule(
          { severity: 'high', responses: ['alert'] },
          { threshold: count.default(200), window: duration.prefault('1h'), factor: z.number().min(1).default(5), min_count: count.default(50) },
        ),
        /** A staff member active at an hour of day (UTC, ±1 hour) never seen in the history, once active on `min_history_days` days. */
        off_hours: rule({ severity: 'medium', responses: ['alert'] }, {}),
        /** A staff account seen from a source it was not seen from in the history (not its first source). */
        new_source: rule({ severity: 'medium', responses: ['alert'] }, {}),
        /** Any touch of a planted decoy (customer, card, API key) by anyone but the system and the CLI. */
        honeytoken: rule({ severity: 'critical', responses: ['alert'] }, {}),
        /** A card relay call to a target off CUSTOS_RELAY_ALLOWLIST. */
        relay_off_allowlist: rule({ severity: 'high', responses: ['alert'] }, {}),
        /** `custos audit verify` found the audit log altered (this alert alone is not written into the log it found altered). */
        audit_tamper: rule({ severity: 'critical', responses: ['alert'] }, {}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type DetectionRules = z.output<typeof RulesSchema>;
export type RuleId = keyof DetectionRules['rules'];
export type RuleSettings = DetectionRules['rules'][RuleId];

export class RulesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RulesError';
  }
}

/** The built-in defaults, or the file's settings over them; RulesError names the first bad key. */
export function loadRules(file: string | undefined): DetectionRules {
  if (file === undefined) return RulesSchema.parse({});
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new RulesError(`CUSTOS_DETECTION_RULES: the file cannot be read as YAML or JSON (${(error as Error).message.split('\n')[0]})`);
  }
  const parsed = RulesSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RulesError(`CUSTOS_DETECTION_RULES: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}
