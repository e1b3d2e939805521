/**
 * A serial queue of operations: they run one at a time, in arrival order, even when async —
 * what makes a supervisor handle one message (exit signal or API call) at a time like an OTP
 * process. Draining starts on a microtask, never inside the caller's stack, so a child that
 * crashes while the supervisor is calling it cannot re-enter the supervisor.
 */
export type Operation = () => unknown;

export class OpQueue {
  private items: Operation[] = [];
  private head = 0;
  private draining = false;

  constructor(private readonly onError: (error: unknown) => void) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues `op`; the promise settles with its result. */
  call<T>(op: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.post(async () => {
        try {
          resolve(await op());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /**
   * Runs `op` at once when the queue is idle — the caller is outside this queue's owner, so
   * nothing can interleave — and queues it otherwise. A synchronous op then costs no promise
   * hop through the queue (the hot path of starting a device).
   */
  callNow<T>(op: () => T | Promise<T>): Promise<T> {
    if (this.draining || this.head < this.items.length) return this.call(op);
    this.draining = true;
    let result: T | Promise<T>;
    try {
      result = op();
    } catch (error) {
      this.resume();
      return Promise.reject(error);
    }
    if (result && typeof (result as Promise<T>).then === 'function') {
      return (result as Promise<T>).finally(() => this.resume());
    }
    this.resume();
    return Promise.resolve(result as T);
  }

  /** After a `callNow`: drains what arrived meanwhile, or goes idle. */
  private resume(): void {
    if (this.head < this.items.length) queueMicrotask(() => void this.drain());
    else this.draining = false;
  }

  /** Queues `op` with no reply; a failure goes to the reporter. */
  post(op: Operation): void {
    this.items.push(op);
    if (!this.draining) {
      this.draining = true;
      queueMicrotask(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    while (this.head < this.items.length) {
      const op = this.items[this.head]!;
      this.items[this.head++] = noop;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      try {
        const result = op();
        if (result && typeof (result as Promise<unknown>).then === 'function') await result;
      } catch (error) {
        this.onError(error);
      }
    }
    this.items = [];
    this.head = 0;
    this.draining = false;
  }
}

const noop: Operation = () => undefined;
