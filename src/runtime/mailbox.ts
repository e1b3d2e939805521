/**
 * A serial executor: closures posted to it run one at a time, in order, each awaited before the
 * next starts, so a supervisor's admin calls and child-exit handling never interleave.
 *
 * NOTE (to the owner of this file): this is a reconstruction. The original was overwritten by
 * mistake by the engineer writing registry/server/event-manager; it was rebuilt from its call
 * sites in supervisor.ts (`new Mailbox(onError)`, `post`, `call`). Please check it.
 *
 * @example
 * const mailbox = new Mailbox((error) => runtime.report('supervisor failed handling a message', error));
 * mailbox.post(() => handleChildExit(child, reason));
 * const result = await mailbox.call(async () => startChild(spec));
 */
export class Mailbox {
  private readonly queue: (() => void | Promise<void>)[] = [];
  private head = 0;
  private running = false;

  /** `onError` receives what a posted closure threw or rejected with. */
  constructor(private readonly onError: (error: unknown) => void) {}

  /** Messages waiting, not counting the one running. */
  get length(): number {
    return this.queue.length - this.head;
  }

  /** Queues `fn`; it runs after every earlier message has finished. */
  post(fn: () => void | Promise<void>): void {
    this.queue.push(fn);
    if (!this.running) {
      this.running = true;
      // Start on a microtask, never inside post: a message posted from an exit listener must
      // not run inside the exiting process's call stack.
      queueMicrotask(() => void this.run());
    }
  }

  /** Queues `fn` and resolves with its result (rejects with what it threw). */
  call<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.post(async () => {
        try {
          resolve(await fn());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  private async run(): Promise<void> {
    while (this.head < this.queue.length) {
      const fn = this.queue[this.head]!;
      this.queue[this.head] = noop;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      try {
        const out = fn();
        if (out && typeof out.then === 'function') await out;
      } catch (error) {
        try {
          this.onError(error);
        } catch {
          // The reporter itself failed; nothing left to tell.
        }
      }
    }
    this.running = false;
  }
}

const noop = () => {};
