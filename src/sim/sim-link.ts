/**
 * A simulated device's side of its link (sim-device.ts): the `send` function attached while the
 * link is up, sending (counted; refused while muted or stopped), the telemetry tick every
 * `intervalMs`, the heartbeat when nothing was sent for `heartbeatMs`, and answers (replies,
 * fw.acks) sent now or `slowReplyMs` late, and only on the link they were asked on. What the
 * messages say is the device's business: it builds them.
 *
 * All timers are real (`setTimeout`/`setInterval`) and unref'ed; {@link SimLink.detach} clears
 * them.
 *
 * @example
 * const link = new SimLink({ heartbeatMs: 30_000, faults: () => faults, stopped: () => false,
 *   faultTimers, onSent: (m) => log(m), heartbeat: () => hb(), onTelemetryDue: () => tick() });
 * link.attach(send); link.send(hello); link.start(1000); // telemetry every second, heartbeat when idle
 * link.answer(reply, () => reboot());                      // now, or slowReplyMs later
 */
import type { FwAckMessage, Message, ReplyMessage } from '../transports/protocol.js';
import type { FaultTimers, SimFaults } from './sim-faults.js';
import type { SendFn } from './sim-types.js';

export interface SimLinkOptions {
  readonly heartbeatMs: number;
  /** The device's faults now: `mute` stops all sending, `slowReplyMs` holds answers back. */
  readonly faults: () => SimFaults;
  /** True once the device is powered off (final). */
  readonly stopped: () => boolean;
  /** Where held-back answers wait (a reboot or power-off drops them). */
  readonly faultTimers: FaultTimers;
  /** Every message that went out. */
  readonly onSent: (msg: Message) => void;
  /** The heartbeat to send now. */
  readonly heartbeat: () => Message;
  /** Every `intervalMs` while attached: the device sends its telemetry. */
  readonly onTelemetryDue: () => void;
}

/** One attachment; answers go out only if it is still the current one. */
interface Attachment {
  readonly send: SendFn;
}

export class SimLink {
  /** Messages sent to the link, all types. */
  sent = 0;
  private readonly options: SimLinkOptions;
  private attachment: Attachment | undefined;
  private lastSendFn: SendFn | undefined;
  private telemetryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(options: SimLinkOptions) {
    this.options = options;
  }

  get attached(): boolean {
    return this.attachment !== undefined;
  }

  /** The last `send` attached (a reboot without hooks attaches it again). */
  get lastSend(): SendFn | undefined {
    return this.lastSendFn;
  }

  /** Takes `send` as the link, replacing the previous one; nothing runs until {@link start}. */
  attach(send: SendFn): void {
    this.detach();
    this.attachment = { send };
    this.lastSendFn = send;
  }

  /** Starts the telemetry tick every `intervalMs` and the heartbeat (after the hello went). */
  start(intervalMs: number): void {
    this.startTelemetry(intervalMs);
    this.heartbeatTimer = setTimeout(() => this.onHeartbeatDue(), this.options.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /** The link went down: stop sending (answers still pending for it are dropped). */
  detach(): void {
    this.attachment = undefined;
    clearInterval(this.telemetryTimer);
    clearTimeout(this.heartbeatTimer);
    this.telemetryTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  /** A new telemetry interval: the tick starts again at it, if it runs. */
  setInterval(intervalMs: number): void {
    if (this.telemetryTimer !== undefined) this.startTelemetry(intervalMs);
  }

  canSend(): boolean {
    return this.attachment !== undefined && !this.options.faults().mute && !this.options.stopped();
  }

  /** Sends one message now; false when it was not sent (detached, muted, stopped, or `send` threw). */
  send(msg: Message): boolean {
    const att = this.attachment;
    if (att === undefined || this.options.faults().mute || this.options.stopped()) return false;
    try {
      att.send(msg);
    } catch {
      return false; // the adapter drops what it cannot send
    }
    this.sent++;
    this.heartbeatTimer?.refresh();
    this.options.onSent(msg);
    return true;
  }

  /** Sends a reply or fw.ack now, or `slowReplyMs` later; `after` runs once it went (or would have). */
  answer(msg: ReplyMessage | FwAckMessage, after?: () => void): void {
    const att = this.attachment;
    const go = () => {
      if (this.attachment === att) this.send(msg);
      after?.();
    };
    const delay = this.options.faults().slowReplyMs ?? 0;
    if (delay <= 0) {
      go();
      return;
    }
    this.options.faultTimers.later(delay, () => {
      if (!this.options.stopped()) go();
    });
  }

  private startTelemetry(intervalMs: number): void {
    clearInterval(this.telemetryTimer);
    this.telemetryTimer = setInterval(() => this.options.onTelemetryDue(), intervalMs);
    this.telemetryTimer.unref();
  }

  private onHeartbeatDue(): void {
    const timer = this.heartbeatTimer;
    if (timer === undefined) return;
    if (!this.send(this.options.heartbeat())) timer.refresh();
  }
}
