/**
 * Crash-loop classification: a device supervisor that gave up (past its restart intensity,
 * `REACHED_MAX_RESTART_INTENSITY`) leaves its device failed with its last crash as the reason.
 * Device supervisors are `transient` under the fleet, so that exit is not restarted.
 */

import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason, isGaveUp } from '../../runtime/exit-reason.js';
import type { Supervisor } from '../../runtime/supervisor.js';
import type { Entry, FleetContext } from './context.js';

export function onDeviceExit(ctx: FleetContext, e: Entry, sup: Supervisor, reason: ExitReason): void {
  if (e.supervisor !== sup) return;
  e.supervisor = undefined;
  if (ctx.stopping || e.removed) return;
  if (isGaveUp(reason)) {
    const last = e.lastExit ? formatExitReason(e.lastExit) : 'unknown';
    e.failure = {
      code: 'crashLoop',
      message: `crashed more than ${ctx.maxRestarts} times within ${ctx.periodMs} ms; last: ${last}`,
      at: ctx.runtime.clock.wallNow(),
    };
    ctx.runtime.logger.error(`device ${e.record.id} failed: ${e.failure.message}`);
    ctx.logEvent('device.failed', e.record.id, { code: e.failure.code, message: e.failure.message });
  }
}
