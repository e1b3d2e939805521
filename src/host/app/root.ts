/**
 * The root of the supervision tree, `fleetvisor` (oneForOne, `autoShutdown: 'anySignificant'`),
 * and the app's stop: the stop steps unwound once, then the runtime disposed; the same stop runs
 * on its own when the root shut down because a significant child (devices, links) ended.
 *
 * @example
 * const root = await startRoot(setup);
 * await root.startChild(spec); // throws the child's reason when it cannot start
 * const { stop, whenStopped } = stopWithRoot(setup, root.supervisor);
 */
import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason } from '../../runtime/exit-reason.js';
import type { Supervisor } from '../../runtime/supervisor.js';
import { startSupervisor } from '../../runtime/supervisor.js';
import type { App } from '../app.js';
import type { AppSetup } from './setup.js';

export interface AppRoot {
  readonly supervisor: Supervisor;
  /** Starts a child of the root; a failure stops the app's start with the child's reason. */
  startChild(spec: Parameters<Supervisor['startChild']>[0]): Promise<void>;
}

export async function startRoot(setup: AppSetup): Promise<AppRoot> {
  const rootStarted = await startSupervisor(setup.runtime, {
    name: 'fleetvisor',
    strategy: 'oneForOne',
    maxRestarts: 3,
    periodMs: 60_000,
    autoShutdown: 'anySignificant',
  });
  if (!rootStarted.ok) throw new Error(`the root supervisor could not start: ${rootStarted.error.message}`);
  const root = rootStarted.value;
  setup.stops.push(async () => {
    await root.stop();
  });
  return {
    supervisor: root,
    startChild: async (spec) => {
      const r = await root.startChild(spec);
      if (!r.ok) throw r.error.cause ?? new Error(r.error.message);
    },
  };
}

/** The app's stop and whenStopped; called once the start is complete, as the last step of it. */
export function stopWithRoot(setup: AppSetup, root: Supervisor): Pick<App, 'stop' | 'whenStopped'> {
  const { runtime, log, stops } = setup;
  let stopping: Promise<void> | undefined;
  let stoppedOnItsOwn: ExitReason | undefined;
  const stop = () => {
    stopping ??= stops.unwind().finally(() => runtime.dispose());
    return stopping;
  };
  root.onExit((reason) => {
    if (stopping) return;
    stoppedOnItsOwn = reason;
    log.error(
      `the app stops: its root supervisor shut down (${formatExitReason(reason)}) because a part it cannot run without ended; see the log above for which`,
    );
    void stop();
  });
  return {
    stop,
    async whenStopped() {
      await root.whenExited();
      await stop();
      return stoppedOnItsOwn;
    },
  };
}
