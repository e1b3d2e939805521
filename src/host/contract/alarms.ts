/**
 * Alarms and their rules (src/alarms/rules.ts), as the views show them.
 */

import type { Json } from './envelope.js';

/** Alarm severities, most severe first (src/alarms/rules.ts). */
export const ALARM_SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export type AlarmSeverity = (typeof ALARM_SEVERITIES)[number];

/** One alarm: raised, acknowledged, cleared and shelved, each with who and when (wall ms). */
export interface AlarmView {
  readonly id: number;
  readonly ruleId: string;
  readonly deviceId: string;
  readonly severity: string;
  readonly message: string;
  readonly value: number | null;
  readonly raisedAt: number;
  readonly ackedAt: number | null;
  readonly ackedBy: string | null;
  /** `system` when its condition ended; `rule deleted by …`. */
  readonly clearedAt: number | null;
  readonly clearedBy: string | null;
  readonly shelvedUntil: number | null;
  readonly shelvedBy: string | null;
}

export interface AlarmCounts {
  /** Open (not cleared). */
  readonly active: number;
  /** Open, not acknowledged, not shelved: the navigation's count. */
  readonly unacked: number;
  readonly shelved: number;
  /** Of `unacked`, per severity. */
  readonly bySeverity: Readonly<Record<string, number>>;
}

export interface AlarmRuleView {
  /** The rule as validated, defaults filled in (src/alarms/rules.ts). */
  readonly rule: { readonly id: string; readonly type: string; readonly severity: string } & Readonly<
    Record<string, Json>
  >;
  readonly description: string;
  /** `crashed`: it threw and was removed (see `error`); saving it again reinstalls it. */
  readonly status: 'running' | 'disabled' | 'crashed';
  readonly error: string | null;
  readonly updatedBy: string;
  readonly updatedAt: number;
  readonly active: number;
}
