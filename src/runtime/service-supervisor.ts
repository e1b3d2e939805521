/**
 * A running supervisor that a service owns — the fleet's `devices`, the links' `links` — placed
 * under a parent supervisor (the app's root) as one of its children. It is the same process (same
 * pid, children, intensity; a kill kills it), except that a graceful stop runs the service's own
 * stop, which saves and flushes what the service holds before it stops its supervisor last. A
 * parent stopping it with plain `stop()` would skip that (the devices' latest states, the links'
 * event log).
 *
 * Such a child cannot be started again by its parent: the service built its supervisor once.
 * Give it `restart: 'temporary'` and, if the app cannot run without it, `significant: true` under
 * a parent with `autoShutdown: 'anySignificant'` — OTP's way of saying "when this part ends, the
 * whole ends".
 *
 * @example
 * const root = await startSupervisor(rt, { name: 'fleetvisor', autoShutdown: 'anySignificant' });
 * await root.value.startChild({
 *   id: 'devices', type: 'supervisor', restart: 'temporary', significant: true, shutdown: 'infinity',
 *   start: async () => { await fleet.start(); return serviceSupervisor(rt, fleet.supervisor, () => fleet.stop()); },
 * });
 */
import type { ExitListener, Process } from './process.js';
import type { Runtime } from './runtime.js';
import type { SupervisorLike } from './supervisor-types.js';

export function serviceSupervisor<S extends SupervisorLike>(
  runtime: Runtime,
  inner: S,
  stopService: () => Promise<void>,
): S {
  let stopRequested = false;
  // A Proxy rather than a wrapper class: every supervisor kind keeps its own admin calls
  // (restartChild, terminateChild, …) and `instanceof`; only stop and the exit links change.
  const proxy: S = new Proxy(inner, {
    get(target, key) {
      if (key === 'stop')
        return (): ReturnType<Process['stop']> => {
          if (!target.alive || stopRequested) return target.whenExited();
          stopRequested = true;
          void stopService()
            // A service whose stop left its supervisor running: stop it here.
            .then(async () => {
              if (target.alive) await target.stop();
            })
            .catch((error: unknown) => {
              // The service failed to stop cleanly: still end its supervisor, so the parent's
              // shutdown is not stuck on it.
              runtime.report(`stopping ${target.name} failed`, error, target.pid);
              target.kill();
            });
          return target.whenExited();
        };
      // The parent recognises its child by identity: exit listeners get the proxy, not the target.
      if (key === 'onExit')
        return (listener: ExitListener) => target.onExit((reason) => listener(reason, proxy));
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return proxy;
}
