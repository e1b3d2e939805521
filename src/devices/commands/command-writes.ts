/**
 * The command tracker's writes to the store's command log, one after another in the order they
 * were asked (src/devices/create-command-tracker.ts). A write never blocks the lifecycle: it is
 * queued, and a failed one is logged while the command lives on in memory.
 *
 * @example
 * const writes = createCommandWrites(runtime.logger);
 * writes.persist(commandId, () => store.updateCommand(commandId, { status: 'sent' }));
 * await writes.flush(); // every write asked so far is done (or logged as failed)
 */
import type { Logger } from '../../runtime/runtime.js';

export interface CommandWrites {
  /** Queues a write after those asked before it. */
  persist(commandId: string, write: () => Promise<unknown>): void;
  /** Resolves when every write queued so far is done. */
  flush(): Promise<void>;
}

export function createCommandWrites(log: Logger): CommandWrites {
  let writes: Promise<unknown> = Promise.resolve();
  return {
    persist(commandId, write) {
      writes = writes
        .then(write)
        .catch((error: unknown) =>
          log.error('command audit write failed', { commandId, error: (error as Error).message }),
        );
    },
    async flush() {
      await writes;
    },
  };
}
