/**
 * The reconcile loop: every `reconcileIntervalMs` (and after each status or spec change) spec is
 * compared with status; drift and a device stuck too long in a state are logged, and each
 * drift's corrective action is taken (one corrective command at a time). Status reported by the
 * device and spec set by the operator come in here, and are reconciled at once.
 */

import type { TimerRef } from '../../runtime/timers.js';
import type { JsonObject, JsonValue } from '../../store/store.js';
import { formatIssues } from '../define-device.js';
import { planReconcile, sameDrift } from '../reconciler.js';
import type { Act } from './actions.js';
import type { Entry, FleetContext } from './context.js';
import { fail } from './context.js';
import { canHandle } from './link-sync.js';
import type { FleetResult } from './types.js';

export interface ReconcileLoop {
  /** One pass over one device (running devices only). */
  reconcileOne(e: Entry): Promise<void>;
  /** One pass over every device now. */
  reconcileNow(): Promise<void>;
  /** Arms the next periodic pass (none when the interval is 0 or the fleet is stopping). */
  schedule(): void;
  /** Cancels the next periodic pass. */
  cancel(): void;
  /** See {@link Fleet.reportStatus}. */
  reportStatus(id: string, status: JsonObject): Promise<FleetResult<undefined>>;
  /** See {@link Fleet.setSpec}. */
  setSpec(id: string, spec: JsonObject): Promise<FleetResult<undefined>>;
}

export function createReconcileLoop(ctx: FleetContext, act: Act, intervalMs: number): ReconcileLoop {
  const { runtime } = ctx;

  const reconcileOne = (e: Entry): Promise<void> => reconcileDevice(ctx, act, e);

  async function reconcileNow(): Promise<void> {
    for (const e of ctx.entries.values()) await reconcileOne(e);
  }

  let timer: TimerRef | undefined;
  const schedule = () => {
    if (intervalMs <= 0 || ctx.stopping) return;
    timer = runtime.timers.schedule(
      intervalMs,
      () => {
        timer = undefined;
        void reconcileNow().finally(schedule);
      },
      { label: 'reconcile' },
    );
  };

  return {
    reconcileOne,
    reconcileNow,
    schedule,
    cancel() {
      if (timer) runtime.timers.cancel(timer);
    },

    async reportStatus(id, status) {
      const e = ctx.entries.get(id);
      if (!e) return fail('notFound', `status for unknown device '${String(id).slice(0, 80)}'`);
      const merged = { ...e.record.status, ...status };
      e.record = { ...e.record, status: merged };
      try {
        await ctx.store.setDeviceStatus(id, merged);
        await reconcileOne(e);
      } catch (error) {
        // Kept in memory; written and reconciled again with the next report. A store that fails
        // (its connection ended, a cluster instance's lease lost) must not take the app down:
        // callers fire and forget this (the link hub on every hello).
        runtime.report(`the reported status of ${id} was not stored or reconciled`, error);
      }
      return { ok: true, value: undefined };
    },

    async setSpec(id, spec) {
      const e = ctx.entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      const s = e.kind.spec ? e.kind.spec.safeParse(spec) : { success: true as const, data: spec };
      if (!s.success) return fail('badSpec', formatIssues(s.error));
      const saved = await ctx.store.upsertDevice({ ...e.record, spec: s.data as JsonObject });
      if (saved.ok) e.record = saved.value;
      ctx.logEvent('device.spec', id, s.data as JsonValue);
      await reconcileOne(e);
      return { ok: true, value: undefined };
    },
  };
}

/**
 * One pass over one running device: its drift and whether it is stuck are logged when they
 * change, and each drift's corrective action is taken, one corrective command at a time.
 */
async function reconcileDevice(ctx: FleetContext, act: Act, e: Entry): Promise<void> {
  const { runtime } = ctx;
  if (!e.supervisor || !e.machine?.alive) return;
  const plan = planReconcile(
    e.kind,
    {
      spec: e.record.spec,
      status: e.record.status,
      state: e.machine.state,
      stateEnteredAt: e.stateEnteredAt,
    },
    runtime.clock.wallNow(),
  );
  if (plan.error) runtime.report(`reconcile of ${e.record.id} threw`, plan.error);
  if (!sameDrift(plan.drift, e.drift) && plan.drift.length > 0)
    ctx.logEvent(
      'device.drift',
      e.record.id,
      plan.drift.map((d) => ({
        field: d.field,
        desired: d.desired as JsonValue,
        reported: d.reported as JsonValue,
      })),
    );
  e.drift = plan.drift;
  if (plan.stuck && !e.stuck) {
    runtime.logger.warn(
      `device ${e.record.id} stuck in ${plan.stuck.state} for ${Math.round(plan.stuck.forMs)} ms (limit ${plan.stuck.limitMs} ms)`,
    );
    ctx.logEvent('device.stuck', e.record.id, plan.stuck);
  }
  e.stuck = plan.stuck;
  for (const d of plan.drift) {
    if (!d.action) continue;
    const built = e.kind.buildAction(d.action.name, d.action.args);
    if (!built.ok) continue;
    if (built.value.type === 'event' && !canHandle(e, built.value.event)) continue;
    // One corrective command at a time: not another while the last one waits.
    const open = ctx.commands.open(e.record.id);
    if (
      built.value.type === 'command' &&
      open.some((c) => c.action === (built.value as { command: string }).command)
    )
      continue;
    await act(e.record.id, d.action.name, d.action.args, 'system:reconciler');
  }
}
