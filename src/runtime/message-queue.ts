/**
 * A process's message queue: a FIFO of typed messages handled strictly one at a time, in order,
 * even when the handler is async (the next message waits for the previous handler's promise).
 * Used by the server and the event manager, which need what a closure mailbox does not: the
 * queued messages back on close (to answer pending calls) and a wait for the one in flight.
 *
 * Handling starts on a microtask after a push, never inside `push`, so a handler that sends to
 * its own process cannot re-enter itself. Synchronous handlers are drained in one loop with no
 * promise per message.
 *
 * @example
 * const queue = createMessageQueue<string>((m) => log.push(m), (error) => runtime.report('crashed', error));
 * queue.push('a');
 * queue.push('b');            // both handled in order, on the next microtask
 * const left = queue.close(); // stops; returns what was still queued
 * await queue.idle();         // the message being handled (if any) has finished
 */
export interface MessageQueue<M> {
  /** Messages waiting, not counting the one being handled. */
  readonly length: number;
  readonly closed: boolean;
  /** Queues a message; false (and dropped) once closed. */
  push(message: M): boolean;
  /** Stops taking and handling messages; returns those still queued, oldest first. */
  close(): M[];
  /** Resolves once no message is being handled (at once if none is). Never rejects. */
  idle(): Promise<void>;
}

/**
 * `handle` may return a promise; `onError` receives what it threw or rejected with (the owner
 * decides: crash the process, or report and go on). Handling goes on afterwards unless the owner
 * closed the queue.
 */
export function createMessageQueue<M>(
  handle: (message: M) => void | PromiseLike<void>,
  onError: (error: unknown, message: M) => void,
): MessageQueue<M> {
  let items: M[] = [];
  let head = 0;
  let scheduled = false;
  let closed = false;
  let inFlight: Promise<void> | undefined;

  const fail = (error: unknown, message: M) => {
    try {
      onError(error, message);
    } catch (nested) {
      // The owner's error path itself failed: surface it rather than lose it.
      queueMicrotask(() => {
        throw nested;
      });
    }
  };

  const take = (): M => {
    const message = items[head] as M;
    items[head] = undefined as M; // let the message be collected
    head++;
    if (head === items.length) {
      items = [];
      head = 0;
    } else if (head > 1024 && head * 2 > items.length) {
      items = items.slice(head);
      head = 0;
    }
    return message;
  };

  const drain = (): void => {
    while (!closed && head < items.length) {
      const message = take();
      let out: void | PromiseLike<void>;
      try {
        out = handle(message);
      } catch (error) {
        fail(error, message);
        continue;
      }
      if (out && typeof out.then === 'function') {
        inFlight = Promise.resolve(out)
          .then(undefined, (error: unknown) => fail(error, message))
          .then(() => {
            inFlight = undefined;
            drain();
          });
        return;
      }
    }
    scheduled = false;
  };

  return {
    get length() {
      return items.length - head;
    },
    get closed() {
      return closed;
    },
    push(message) {
      if (closed) return false;
      items.push(message);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(drain);
      }
      return true;
    },
    close() {
      closed = true;
      const left = items.slice(head);
      items = [];
      head = 0;
      return left;
    },
    idle() {
      return inFlight ?? Promise.resolve();
    },
  };
}
