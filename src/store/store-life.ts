/**
 * The open/closing state both store engines share: the `closed` refusal, the wrapper that turns a
 * failed query into `readFailed`, the one close that commits what was buffered first, and the
 * write helper over an engine's queue. Engine-neutral.
 *
 * @example
 * const life = createStoreLife(file);
 * const device = await life.read('getDevice', () => reader.get('SELECT …'));
 * await life.close(async () => { await commitBuffered(telemetry, events, queue); await conn.close(); });
 */
import type { JobQueue } from './batch-buffer.js';
import { messageOf } from './records.js';
import type { Durability } from './store.js';
import { StoreError } from './store.js';

export interface StoreLife {
  /** Throws `closed` once {@link StoreLife.close} was called. */
  ensureOpen(): void;
  /** Runs a query on an open store; any failure but a StoreError becomes `readFailed` naming `what`. */
  read<T>(what: string, query: () => Promise<T>): Promise<T>;
  /** True from the first close on (long loops stop at their next step). */
  readonly closing: boolean;
  /** Runs `stop` once; every call returns the same promise. */
  close(stop: () => Promise<void>): Promise<void>;
}

/** `label` names the store in the `closed` message (its file, or its URL without the password). */
export function createStoreLife(label: string): StoreLife {
  let closing: Promise<void> | undefined;
  const ensureOpen = (): void => {
    if (closing !== undefined) throw new StoreError('closed', `the store ${label} is closed`);
  };
  return {
    ensureOpen,
    async read<T>(what: string, query: () => Promise<T>): Promise<T> {
      ensureOpen();
      try {
        return await query();
      } catch (cause) {
        if (cause instanceof StoreError) throw cause;
        throw new StoreError('readFailed', `${what} failed: ${messageOf(cause)}`, { cause });
      }
    },
    get closing() {
      return closing !== undefined;
    },
    close(stop) {
      closing ??= stop();
      return closing;
    },
  };
}

/** One write job in an engine's queue, resolving after its commit. */
export type Write<C> = <T>(
  durability: Durability,
  statements: 'one' | 'many',
  run: (conn: C) => Promise<T>,
) => Promise<T>;

export function writerOf<C>(queue: JobQueue<C>): Write<C> {
  return (durability, statements, run) => queue.submit({ durability, statements, run });
}

interface Flushable {
  flush(): void;
  readonly waiting: number;
}

/**
 * On close: buffered writes were accepted, so they are committed before the connections go. Loops
 * because a commit may let more buffered items into the next job.
 */
export async function commitBuffered(
  telemetry: Flushable,
  events: Flushable,
  queue: { idle(): Promise<void>; readonly depth: number },
): Promise<void> {
  for (;;) {
    telemetry.flush();
    events.flush();
    await queue.idle();
    if (telemetry.waiting === 0 && events.waiting === 0 && queue.depth === 0) break;
  }
}
