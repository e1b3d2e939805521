/**
 * Who the command tracker tells (src/devices/create-command-tracker.ts): the live views'
 * listeners (every status change) and the guards of fleet control (asked before a command is
 * admitted, told when it is admitted and when it ends). One that throws is reported, never fatal
 * to the command or to the others.
 *
 * @example
 * const observers = createCommandObservers(runtime);
 * const stop = observers.listen((command) => view.update(command));
 * observers.addGuard(breaker);
 * const refused = observers.check({ deviceId: 'pump-7', action: 'reboot' }); // undefined: let through
 */
import type { Runtime } from '../../runtime/runtime.js';
import type { CommandFailure, CommandGuard, TrackedCommand } from '../command-tracker.js';

export interface CommandObservers {
  /** Every status change, to the listeners. */
  announce(view: TrackedCommand): void;
  /** The first guard's refusal, in the order they were added; undefined: every guard lets it through. */
  check(input: { readonly deviceId: string; readonly action: string }): CommandFailure | undefined;
  admitted(view: TrackedCommand): void;
  settled(view: TrackedCommand): void;
  listen(listener: (command: TrackedCommand) => void): () => void;
  addGuard(guard: CommandGuard): () => void;
}

export function createCommandObservers(runtime: Runtime): CommandObservers {
  const guards = new Set<CommandGuard>();
  const listeners = new Set<(command: TrackedCommand) => void>();

  function tellGuards(tell: (g: CommandGuard) => void): void {
    for (const g of guards) {
      try {
        tell(g);
      } catch (error) {
        runtime.report('command tracker: a guard threw', error);
      }
    }
  }

  return {
    announce(view) {
      for (const l of listeners) {
        try {
          l(view);
        } catch (error) {
          runtime.report('command tracker: a listener threw', error);
        }
      }
    },
    check(input) {
      for (const g of guards) {
        const refused = g.check(input);
        if (refused) return refused;
      }
      return undefined;
    },
    admitted: (view) => tellGuards((g) => g.admitted?.(view)),
    settled: (view) => tellGuards((g) => g.settled?.(view)),
    listen(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    addGuard(guard) {
      guards.add(guard);
      return () => {
        guards.delete(guard);
      };
    },
  };
}
