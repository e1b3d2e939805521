/**
 * The child specs of a device: a `restForOne` supervisor per device holding its state machine.
 * Every transition of the machine is logged, keeps the liveness timer armed in the live states,
 * and marks the device's snapshot dirty.
 */

import type { ChildSpec } from '../../runtime/child-spec.js';
import type { DynamicChildSpec } from '../../runtime/dynamic-supervisor.js';
import { formatExitReason } from '../../runtime/exit-reason.js';
import type { MachineConfig } from '../../runtime/machine-process.js';
import { MachineProcess } from '../../runtime/machine-process.js';
import { startSupervisor } from '../../runtime/supervisor.js';
import type { DeviceKind } from '../define-device.js';
import type { Entry, FleetContext } from './context.js';
import { onDeviceExit } from './crash-loop.js';
import { fallSilent, syncLink } from './link-sync.js';

export interface ChildSpecs {
  /** The machine options of a device of this kind with these (parsed) attributes. */
  readonly machineConfig: (kind: DeviceKind, attributes: unknown) => MachineConfig;
  /** The per-device supervisor, as a child of the `devices` dynamic supervisor. */
  readonly deviceSpec: DynamicChildSpec<Entry>;
}

export function createChildSpecs(ctx: FleetContext): ChildSpecs {
  const { runtime } = ctx;
  const log = runtime.logger;

  const onTransition = (p: MachineProcess) => {
    const e = ctx.entries.get(p.name);
    if (!e || e.machine !== p) return;
    const state = p.state;
    const liveness = e.kind.liveness;
    const wasLive = liveness?.states.includes(e.stateLabel) ?? false;
    if (state !== e.stateLabel) {
      const from = e.stateLabel;
      e.stateLabel = state;
      e.stateEnteredAt = runtime.clock.wallNow();
      e.stuck = undefined;
      ctx.logEvent('device.state', e.record.id, { from, to: state });
    }
    if (liveness) {
      const running = p.hasTimer('named', 'liveness');
      // Left the live states with the liveness timer gone: it fired. The link is shown down too,
      // so the API never shows a silent device `disconnected` with its link up.
      if (wasLive && !liveness.states.includes(state) && !running && e.link.up) fallSilent(ctx, e);
      if (liveness.states.includes(state)) {
        if (!running)
          p.startTimer('named', 'liveness', liveness.timeoutMs(e.record.attributes), liveness.event);
      } else if (running) p.cancelTimer('named', 'liveness');
    }
    ctx.markDirty(e);
  };

  const machineSpec = (e: Entry): ChildSpec => ({
    id: 'machine',
    shutdown: 1000,
    start: () => {
      const previous = e.machine;
      const restore = previous ? (previous.persistedState() ?? e.restore) : e.restore;
      if (previous) e.restarts++;
      // The first machine restored at app start keeps when its state was entered (stored with it).
      const resumed = !previous && e.restore !== undefined && e.stateLabel === '';
      e.restore = undefined;
      const p = new MachineProcess(runtime, e.record.id, e.config!, { restore, childId: 'machine' });
      p.onExit((reason) => {
        e.lastExit = reason;
        if (reason.type === 'error') {
          log.warn(`device ${e.record.id} crashed: ${reason.error.message}`);
          ctx.logEvent('device.crashed', e.record.id, { reason: formatExitReason(reason) });
        }
      });
      e.machine = p;
      if (p.alive) {
        if (p.state !== e.stateLabel) {
          e.stateLabel = p.state;
          if (!resumed) e.stateEnteredAt = runtime.clock.wallNow();
        }
        onTransition(p);
        // A restored machine meets the link as it is now, not as it was when the state was saved.
        if (e.link.since !== null) syncLink(e, e.link.up);
      }
      return p;
    },
  });

  const deviceSpec: DynamicChildSpec<Entry> = {
    restart: 'transient',
    type: 'supervisor',
    shutdown: 'infinity',
    idOf: (e) => e.record.id,
    start: async (e) => {
      const res = await startSupervisor(runtime, {
        name: `device:${e.record.id}`,
        strategy: 'restForOne',
        maxRestarts: ctx.maxRestarts,
        periodMs: ctx.periodMs,
        children: [machineSpec(e)],
      });
      if (!res.ok) throw new Error(res.error.message);
      const sup = res.value;
      e.supervisor = sup;
      sup.onExit((reason) => onDeviceExit(ctx, e, sup, reason));
      return sup;
    },
  };

  const machineConfig = (kind: DeviceKind, attributes: unknown): MachineConfig => ({
    machine: kind.machine,
    input: kind.input ? kind.input(attributes as never) : undefined,
    onTransition,
    hibernateAfterMs: kind.hibernateAfterMs,
  });

  return { machineConfig, deviceSpec };
}
