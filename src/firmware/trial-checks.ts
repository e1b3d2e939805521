/**
 * Telemetry checks during a firmware trial (issue 14 §2), pure: an operator writes each check as a
 * short string, and a watch judges the device's readings while the new image runs unconfirmed.
 *
 *   `METRIC<=N`  every reading of METRIC during the trial is at most N (`temp<=90`)
 *   `METRIC>=N`  every reading is at least N (`rssi>=-90`)
 *   `METRIC`     METRIC is reported at least once during the trial (`rssi`)
 *
 * METRIC is a protocol metric name (protocol-fields.ts `isName`: 1–64 of `A-Z a-z 0-9 _ - .`, so no
 * MQTT wildcard `+`/`#`); N a decimal number (`-12`, `90.5`). Spaces around the parts are allowed.
 * A watch keeps the first reading that breaks each limit; its verdict names the metric, the value,
 * the time (UTC) and the check. A limit can be judged at the first bad reading (the job rolls back
 * at once); a required metric only at the trial's end.
 *
 * @example
 * const checks = parseTrialChecks(['temp<=90', 'rssi']);
 * if (!checks.ok) throw new Error(checks.error.message);
 * const watch = createTrialWatch(checks.value);
 * watch.observe({ temp: 97.2 }, Date.UTC(2026, 0, 1, 12, 3, 4));
 * // 'temp read 97.2 at 12:03:04 UTC, above the trial's limit temp<=90'
 * watch.verdict(); // the same reason, then '; no rssi reading during the trial'
 */
import { describeChar } from '../devices/device-id.js';
import { type Failure, ok, type Result } from '../lib/result.js';
import { isName } from '../transports/protocol-fields.js';
import { LIMITS } from '../transports/protocol-types.js';

/** The most checks one job or rollout takes. */
export const MAX_TRIAL_CHECKS = 16;
/** The longest text of one check. */
export const MAX_TRIAL_CHECK_CHARS = 100;

/** One parsed check; `text` is the check as it is shown (`temp<=90`, spaces removed). */
export type TrialCheck =
  | { readonly kind: 'atMost'; readonly metric: string; readonly limit: number; readonly text: string }
  | { readonly kind: 'atLeast'; readonly metric: string; readonly limit: number; readonly text: string }
  | { readonly kind: 'reported'; readonly metric: string; readonly text: string };

export type TrialCheckError = Failure<'badCheck'>;

const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)$/;
const COMPARISON = /^(.*?)\s*(<=|>=)\s*(.*)$/;

const bad = (text: string, why: string): { readonly ok: false; readonly error: TrialCheckError } => ({
  ok: false,
  error: {
    code: 'badCheck',
    message: `trial check ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}: ${why}`,
  },
});

/** What is wrong with a metric name, or undefined when the protocol takes it. */
function nameProblem(name: string): string | undefined {
  if (isName(name)) return undefined;
  if (name === '') return 'the metric name is missing';
  if (name.length > LIMITS.nameChars)
    return `the metric name has ${name.length} characters; at most ${LIMITS.nameChars}`;
  let at = 0;
  while (at < name.length && isName(name.charAt(at))) at++;
  const c = name.charAt(at);
  const what = c === '+' || c === '#' ? `the MQTT wildcard '${c}'` : describeChar(name, at).text;
  return `the metric name ${JSON.stringify(name)} has ${what} at position ${at}; a metric name is A-Z a-z 0-9 _ - .`;
}

/** One check's text, parsed; the error names the check and what is wrong with it. */
export function parseTrialCheck(text: string): Result<TrialCheck, TrialCheckError> {
  if (text.length > MAX_TRIAL_CHECK_CHARS)
    return bad(text, `${text.length} characters; a check has at most ${MAX_TRIAL_CHECK_CHARS}`);
  const t = text.trim();
  if (t === '') return bad(text, 'an empty check; write METRIC<=N, METRIC>=N or METRIC');
  const m = COMPARISON.exec(t);
  if (!m) {
    if (/[<>=!]/.test(t)) return bad(text, 'unknown comparison; write METRIC<=N, METRIC>=N or METRIC');
    const problem = nameProblem(t);
    return problem ? bad(text, problem) : ok({ kind: 'reported', metric: t, text: t });
  }
  const [, metric = '', op, limitText = ''] = m;
  const problem = nameProblem(metric);
  if (problem) return bad(text, problem);
  if (!NUMBER.test(limitText))
    return bad(text, `the limit must be a number (e.g. ${metric}${op}90), got ${JSON.stringify(limitText)}`);
  const limit = Number(limitText);
  if (!Number.isFinite(limit)) return bad(text, `the limit ${limitText} is out of range`);
  const shown = `${metric}${op}${limitText}`;
  return ok(
    op === '<='
      ? { kind: 'atMost', metric, limit, text: shown }
      : { kind: 'atLeast', metric, limit, text: shown },
  );
}

/** The checks as an operator wrote them; the first bad one is refused, named. No texts: no checks. */
export function parseTrialChecks(texts: readonly string[]): Result<readonly TrialCheck[], TrialCheckError> {
  if (texts.length > MAX_TRIAL_CHECKS)
    return {
      ok: false,
      error: { code: 'badCheck', message: `${texts.length} trial checks; at most ${MAX_TRIAL_CHECKS}` },
    };
  const checks: TrialCheck[] = [];
  for (const text of texts) {
    const c = parseTrialCheck(text);
    if (!c.ok) return c;
    checks.push(c.value);
  }
  return ok(checks);
}

/** The readings of one trial against its checks. */
export interface TrialWatch {
  /**
   * One telemetry message's values, received at `at` (wall ms). Answers the reason when this
   * reading is the first to break a limit of the trial (the job rolls back at once), else undefined.
   */
  observe(values: Readonly<Record<string, number>>, at: number): string | undefined;
  /** Undefined when every check held (so far); else the reasons, the first broken limit first. */
  verdict(): string | undefined;
}

/** `HH:MM:SS UTC` of a wall-clock instant. */
const clockTime = (at: number) => `${new Date(at).toISOString().slice(11, 19)} UTC`;

function breach(check: TrialCheck, value: number, at: number): string | undefined {
  if (check.kind === 'reported') return undefined;
  const over = check.kind === 'atMost' ? value > check.limit : value < check.limit;
  if (!over) return undefined;
  const side = check.kind === 'atMost' ? 'above' : 'below';
  return `${check.metric} read ${value} at ${clockTime(at)}, ${side} the trial's limit ${check.text}`;
}

/** A fresh watch for one trial (a trial started again, or resumed after a restart, gets a new one). */
export function createTrialWatch(checks: readonly TrialCheck[]): TrialWatch {
  /** Per check: the first reason it broke (limits), or whether it was seen (required metrics). */
  const broken: (string | undefined)[] = checks.map(() => undefined);
  const seen: boolean[] = checks.map(() => false);
  /** Indexes of broken checks, in the order they broke. */
  const order: number[] = [];
  return {
    observe(values, at) {
      let first: string | undefined;
      for (let i = 0; i < checks.length; i++) {
        const check = checks[i]!;
        if (!Object.hasOwn(values, check.metric)) continue;
        const value = values[check.metric]!;
        seen[i] = true;
        if (broken[i] !== undefined) continue;
        const reason = breach(check, value, at);
        if (reason === undefined) continue;
        broken[i] = reason;
        order.push(i);
        first ??= reason;
      }
      return first;
    },
    verdict() {
      const reasons = order.map((i) => broken[i]!);
      for (let i = 0; i < checks.length; i++)
        if (checks[i]!.kind === 'reported' && !seen[i])
          reasons.push(`no ${checks[i]!.metric} reading during the trial`);
      return reasons.length > 0 ? reasons.join('; ') : undefined;
    },
  };
}
