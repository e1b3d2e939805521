/**
 * One `fw.ack` for the chunks that arrive together (docs/protocol.md §5.1): a chunk ack without an
 * error is held until the end of this turn of the event loop, and a later one of the same turn
 * replaces it (the offset is cumulative, the last says the most). Anything else the device sends
 * first sends the held ack, so the order of messages stays the device's.
 *
 * @example
 * const acks = new AckCoalescer(true, (client, msg) => this.publishNow(client, msg));
 * device.attach((msg) => acks.send(client, msg));
 */
import type { FwAckMessage, Message } from '../transports/protocol.js';

export class AckCoalescer<T> {
  /** Chunk acks not sent because a later one of the same turn said more. */
  coalesced = 0;
  private held: { readonly target: T; readonly msg: FwAckMessage } | undefined;

  /** `enabled` false: every message goes at once. */
  constructor(
    private readonly enabled: boolean,
    private readonly deliver: (target: T, msg: Message) => void,
  ) {}

  send(target: T, msg: Message): void {
    if (this.enabled && msg.type === 'fw.ack' && msg.step === 'chunk' && msg.error === undefined) {
      if (this.held === undefined) setImmediate(() => this.flush());
      else this.coalesced++;
      this.held = { target, msg };
      return;
    }
    this.flush();
    this.deliver(target, msg);
  }

  /** Sends the held ack now, if there is one. */
  flush(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.deliver(held.target, held.msg);
  }
}
