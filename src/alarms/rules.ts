/**
 * Alarm rules as data: one zod schema per rule type, validated once at the boundary (the API, the
 * config file, the store on load), with defaults filled in. Imports only zod, so the renderer's
 * rule editor runs the same validation before it sends.
 *
 * Telemetry rules: `threshold` (a metric above/below a value for `forMs`, cleared past the
 * value by `hysteresis`), `rateOfChange` (a metric changing faster than `maxPerSecond`), `noData`
 * (no telemetry, or none of `metric`, for `forMs`). Lifecycle rules: `offline` (link down for
 * `forMs`), `crashLoop` (the device failed past its restart intensity), `drift` (spec and status
 * disagree for `forMs`), `stuck` (in a state longer than its kind expects), `circuitOpen` (the
 * device's command circuit breaker open for `forMs`; src/devices/command-guards.ts).
 *
 * @example
 * const r = parseRule({ id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30, forMs: 2000 });
 * if (!r.ok) r.error.message; // 'value: expected number'
 */
import { z } from 'zod';

export const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RULE_TYPES = [
  'threshold',
  'rateOfChange',
  'noData',
  'offline',
  'crashLoop',
  'drift',
  'stuck',
  'circuitOpen',
] as const;
export type RuleType = (typeof RULE_TYPES)[number];

const ruleId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'letters, digits, . _ - (at most 64)' });
const metric = z.string().min(1).max(64);
const durationMs = z
  .number()
  .int()
  .min(0)
  .max(30 * 86_400_000);

const base = {
  id: ruleId,
  name: z.string().max(100).optional(),
  severity: z.enum(SEVERITIES).default('major'),
  enabled: z.boolean().default(true),
  /** Which devices it watches: all of them without a scope; else every condition given must hold. */
  scope: z
    .object({
      deviceIds: z.array(z.string().min(1).max(128)).max(10_000).optional(),
      kind: z.string().min(1).max(128).optional(),
      tag: z.string().min(1).max(100).optional(),
    })
    .strict()
    .optional(),
};

export const RULE_SCHEMA = z.discriminatedUnion('type', [
  z
    .object({
      ...base,
      type: z.literal('threshold'),
      metric,
      op: z.enum(['above', 'below']),
      value: z.number().finite(),
      forMs: durationMs.default(0),
      hysteresis: z.number().finite().min(0).default(0),
    })
    .strict(),
  z
    .object({
      ...base,
      type: z.literal('rateOfChange'),
      metric,
      /** Raised when |Δvalue / Δt| exceeds it, per second. */
      maxPerSecond: z.number().finite().gt(0),
      hysteresis: z.number().finite().min(0).default(0),
    })
    .strict(),
  z
    .object({
      ...base,
      type: z.literal('noData'),
      metric: metric.optional(),
      forMs: durationMs.refine((n) => n > 0, 'must be above 0'),
    })
    .strict(),
  z.object({ ...base, type: z.literal('offline'), forMs: durationMs.default(0) }).strict(),
  z.object({ ...base, type: z.literal('crashLoop') }).strict(),
  z.object({ ...base, type: z.literal('drift'), forMs: durationMs.default(0) }).strict(),
  z.object({ ...base, type: z.literal('stuck') }).strict(),
  z.object({ ...base, type: z.literal('circuitOpen'), forMs: durationMs.default(0) }).strict(),
]);

export type AlarmRule = z.output<typeof RULE_SCHEMA>;
export type AlarmRuleInput = z.input<typeof RULE_SCHEMA>;

export type RuleResult =
  | { readonly ok: true; readonly value: AlarmRule }
  | { readonly ok: false; readonly error: { readonly code: 'badRule'; readonly message: string } };

/** Validates a rule; the error names each bad field (`forMs: …; op: …`). */
export function parseRule(input: unknown): RuleResult {
  const r = RULE_SCHEMA.safeParse(input);
  if (r.success) return { ok: true, value: r.data };
  const message = r.error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'rule'}: ${i.message}`)
    .join('; ');
  return { ok: false, error: { code: 'badRule', message } };
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** One line for people: `temp above 10 for 2 s (hysteresis 1)`. */
export function describeRule(rule: AlarmRule): string {
  switch (rule.type) {
    case 'threshold':
      return `${rule.metric} ${rule.op} ${rule.value}${rule.forMs > 0 ? ` for ${seconds(rule.forMs)}` : ''}${rule.hysteresis > 0 ? ` (hysteresis ${rule.hysteresis})` : ''}`;
    case 'rateOfChange':
      return `${rule.metric} changing faster than ${rule.maxPerSecond}/s`;
    case 'noData':
      return `no ${rule.metric ?? 'telemetry'} for ${seconds(rule.forMs)}`;
    case 'offline':
      return `offline${rule.forMs > 0 ? ` for ${seconds(rule.forMs)}` : ''}`;
    case 'crashLoop':
      return 'crash loop (past its restart intensity)';
    case 'drift':
      return `spec and status differ${rule.forMs > 0 ? ` for ${seconds(rule.forMs)}` : ''}`;
    case 'stuck':
      return 'stuck in a state longer than expected';
    case 'circuitOpen':
      return `command circuit breaker open${rule.forMs > 0 ? ` for ${seconds(rule.forMs)}` : ''}`;
  }
}
