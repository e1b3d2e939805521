/**
 * The reconciler's plan, as a pure function: for one device, the drift between spec and status
 * (each with its corrective action) and whether it is stuck in a state past that state's
 * deadline. The fleet acts on the plan; a test is a table.
 */

import type { JsonObject } from '../store/store.js';
import type { DeviceKind, Drift } from './define-device.js';

export interface ReconcileSubject {
  readonly spec: JsonObject;
  readonly status: JsonObject;
  readonly state: string;
  /** When the device entered its current state (wall ms). */
  readonly stateEnteredAt: number;
}

export interface ReconcilePlan {
  readonly drift: readonly Drift[];
  /** Set when the state has been held past the kind's deadline for it. */
  readonly stuck: { readonly state: string; readonly forMs: number; readonly limitMs: number } | undefined;
  /** The kind's reconcile function threw: the fleet reports it; the drift is unknown. */
  readonly error: Error | undefined;
}

export function planReconcile(kind: DeviceKind, subject: ReconcileSubject, nowMs: number): ReconcilePlan {
  let drift: Drift[] = [];
  let error: Error | undefined;
  if (kind.reconcile) {
    try {
      drift = kind.reconcile({ spec: subject.spec, status: subject.status, state: subject.state });
    } catch (cause) {
      error = cause instanceof Error ? cause : new Error(String(cause));
    }
  }
  const limitMs = kind.stuckAfterMs?.[subject.state];
  const forMs = nowMs - subject.stateEnteredAt;
  const stuck =
    limitMs !== undefined && forMs > limitMs ? { state: subject.state, forMs, limitMs } : undefined;
  return { drift, stuck, error };
}

/** Two drift lists name the same differences (to report drift once, not every interval). */
export function sameDrift(a: readonly Drift[], b: readonly Drift[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((d, i) => {
    const e = b[i]!;
    return (
      d.field === e.field &&
      JSON.stringify(d.desired) === JSON.stringify(e.desired) &&
      JSON.stringify(d.reported) === JSON.stringify(e.reported)
    );
  });
}
