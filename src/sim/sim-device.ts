/**
 * The simulated device: the device side of protocol v1 (docs/protocol.md), independent of the link.
 *
 * A `SimDevice` is what firmware would be: a boot counter, one `seq` counter per boot shared by
 * telemetry and events, A/B firmware slots with a bootloader that falls back from an unconfirmed
 * image, a reply cache that executes every `cmdId` at most once, and a small command set
 * (`ping`, `hello`, `reboot`, `identify`, `setInterval`, `setConfig`). It knows nothing about
 * MQTT or serial lines: a transport adapter (mqtt-device.ts, serial-device.ts) calls
 * {@link SimDevice.attach} with a `send` function when a link comes up, {@link SimDevice.detach}
 * when it goes down, and {@link SimDevice.receive} for every host → device message.
 *
 * Lifecycle of one connection: `attach(send)` sends `hello` first, then telemetry every
 * `intervalMs`, and a heartbeat whenever nothing else was sent for `heartbeatMs`. A reboot
 * (the `reboot` command, `fw.apply`, `fw.rollback`, a crash-loop fault or {@link SimDevice.reboot})
 * detaches, takes a new `boot` value, restarts `seq` at 0, picks the firmware slot the bootloader
 * would, and after `bootDelayMs` calls the `onBoot` hook (the adapter reconnects and attaches
 * again) or, without hooks, re-attaches to the last link by itself.
 *
 * What survives a reboot (it is "in flash"): the firmware slots and the transfer in progress, the
 * reply cache (so a command re-sent after the reboot it caused is not executed twice), `config`
 * and `intervalMs`, the `executed` counters. What does not: `seq`, `identifying`, uptime.
 *
 * Faults ({@link SimDevice.setFaults}) make it misbehave on purpose: `mute` (a hung device: no
 * sending, no answering), `slowReplyMs` (every reply and fw.ack late), `garbage` (the adapters
 * inject junk on the link) and `crashLoopOnBoot` (reboot ~200 ms after every boot's hello).
 *
 * All timers are real (`setTimeout`/`setInterval`) and unref'ed; {@link SimDevice.stop} clears them all.
 *
 * The parts: the commands, their reply cache and expiry (sim-commands.ts, planners without side
 * effects), the firmware slots and bootloader (sim-firmware.ts, one method per `fw.*` message),
 * the faults and their timers (sim-faults.ts), the messages it sends (sim-messages.ts), the link's
 * sending, telemetry tick, heartbeat and slow answers (sim-link.ts), the options checked once and
 * the default telemetry (sim-options.ts), the public types (sim-types.ts); what importers use is
 * re-exported here. This class owns the boot cycle and the device's state, and carries out what
 * the parts decide.
 *
 * @example
 * const device = new SimDevice({ id: 'pump-7', kind: 'pump', telemetryIntervalMs: 500 });
 * device.attach((msg) => link.write(encodeFrame(encodeMessage(msg)))); // sends hello, starts telemetry
 * device.receive({ v: 1, type: 'cmd', cmdId: 'c1', action: 'ping' });   // → reply ok
 * device.executed.get('c1'); // 1
 * device.setFaults({ slowReplyMs: 2000 });
 * device.stop();
 */
import { EventEmitter } from 'node:events';
import type {
  CommandMessage,
  FirmwareInfo,
  HelloMessage,
  JsonObject,
  Message,
  Severity,
} from '../transports/protocol.js';
import { encodeMessage, nextSeq } from '../transports/protocol.js';
import type { CommandEffect } from './sim-commands.js';
import { expiredReply, planCommand, ReplyCache, SIM_ACTIONS } from './sim-commands.js';
import type { SimFaults } from './sim-faults.js';
import { FaultTimers, mergeFaults } from './sim-faults.js';
import type { FwRequest } from './sim-firmware.js';
import { SimFirmware } from './sim-firmware.js';
import { SimLink } from './sim-link.js';
import type { Stamp } from './sim-messages.js';
import { eventMessage, heartbeatMessage, helloMessage, telemetryMessage } from './sim-messages.js';
import { randomWalkMetrics, resolveSimOptions } from './sim-options.js';
import type {
  RebootReason,
  SendFn,
  SimDeviceEvents,
  SimDeviceHooks,
  SimDeviceOptions,
  SimDeviceState,
} from './sim-types.js';

export {
  MAX_IDENTIFY_SECONDS,
  MAX_INTERVAL_MS,
  MIN_INTERVAL_MS,
  REPLY_CACHE_SIZE,
  SIM_ACTIONS,
} from './sim-commands.js';
export type { SimFaults } from './sim-faults.js';
export { CRASH_AFTER_HELLO_MS } from './sim-faults.js';
export type { SimFirmwareOptions, SimTransferState } from './sim-firmware.js';
export type {
  RebootReason,
  SendFn,
  SimDeviceEvents,
  SimDeviceHooks,
  SimDeviceOptions,
  SimDeviceState,
} from './sim-types.js';

/**
 * One simulated device (see the file comment). Throws `RangeError` for bad options.
 *
 * @example
 * const d = new SimDevice({ id: 'sim-m001', telemetryIntervalMs: 200, random: seeded(1) });
 * d.attach(send);
 * d.receive(cmd); // replies through send
 */
export class SimDevice extends EventEmitter<SimDeviceEvents> {
  readonly id: string;
  readonly kind: string;
  readonly heartbeatMs: number;
  readonly bootDelayMs: number;
  readonly maxImageBytes: number;
  /** What `hello` lists: the actions, `fw`, then `extraCapabilities`. */
  readonly capabilities: readonly string[];
  private readonly replies = new ReplyCache();
  /** How many times each `cmdId` was really executed (duplicates and expired commands don't count). */
  readonly executed: Map<string, number> = this.replies.executed;
  /** Host → device messages taken in while up. */
  received = 0;
  /** Host → device messages ignored: muted, rebooting, stopped or not attached. */
  ignored = 0;
  /** Reboots since power-on. */
  reboots = 0;

  private readonly now: () => number;
  private readonly metricsFn: ((device: SimDevice) => Record<string, number>) | undefined;
  private hooks: SimDeviceHooks;

  private bootValue: number;
  private seqNext = 0;
  private bootedAt = performance.now();
  private attachesThisBoot = 0;
  private down = false;
  private stopped = false;

  private intervalMsValue: number;
  private configValue: JsonObject = {};
  private identifyingUntil = 0;
  private faultsValue: SimFaults = {};
  private readonly defaultMetrics: (uptimeMs: number) => Record<string, number>;

  private readonly flash: SimFirmware;
  private readonly link: SimLink;

  private identifyTimer: NodeJS.Timeout | undefined;
  private bootTimer: NodeJS.Timeout | undefined;
  private readonly faultTimers = new FaultTimers();

  constructor(options: SimDeviceOptions) {
    super();
    const o = resolveSimOptions(options);
    this.id = o.id;
    this.kind = o.kind;
    this.now = o.now;
    this.metricsFn = options.metrics;
    this.hooks = options.hooks ?? {};
    this.intervalMsValue = o.intervalMs;
    this.heartbeatMs = o.heartbeatMs;
    this.bootDelayMs = o.bootDelayMs;
    this.maxImageBytes = o.maxImageBytes;
    this.capabilities = [...SIM_ACTIONS, 'fw', ...(options.extraCapabilities ?? [])];
    this.bootValue = o.boot;
    this.flash = new SimFirmware(o.firmware, this.maxImageBytes);
    this.defaultMetrics = randomWalkMetrics(o.random);
    if (options.faults) this.faultsValue = { ...options.faults };
    this.link = new SimLink({
      heartbeatMs: this.heartbeatMs,
      faults: () => this.faultsValue,
      stopped: () => this.stopped,
      faultTimers: this.faultTimers,
      onSent: (msg) => this.emit('sent', msg),
      heartbeat: () => heartbeatMessage(this.bootValue, this.uptimeMs),
      onTelemetryDue: () => this.sendTelemetry(),
    });
    // Validates kind and versions the way the host will (throws ProtocolError naming the field).
    encodeMessage(this.helloMessage());
  }

  // -------------------------------------------------------------------------------------------
  // State

  get boot(): number {
    return this.bootValue;
  }
  /** The `seq` the next telemetry or event will carry. */
  get seq(): number {
    return this.seqNext;
  }
  get firmware(): FirmwareInfo {
    return this.flash.info;
  }
  get config(): JsonObject {
    return this.configValue;
  }
  get intervalMs(): number {
    return this.intervalMsValue;
  }
  get identifying(): boolean {
    return this.identifyingUntil > performance.now();
  }
  get attached(): boolean {
    return this.link.attached;
  }
  /** Messages sent to the link, all types. */
  get sent(): number {
    return this.link.sent;
  }
  /** True between going down for a reboot and coming back up. */
  get rebooting(): boolean {
    return this.down;
  }
  get isStopped(): boolean {
    return this.stopped;
  }
  get uptimeMs(): number {
    return Math.max(0, Math.round(performance.now() - this.bootedAt));
  }
  get faults(): SimFaults {
    return this.faultsValue;
  }

  state(): SimDeviceState {
    return {
      id: this.id,
      kind: this.kind,
      boot: this.bootValue,
      seq: this.seqNext,
      firmware: this.firmware,
      config: this.configValue,
      intervalMs: this.intervalMsValue,
      identifying: this.identifying,
      attached: this.attached,
      rebooting: this.down,
      reboots: this.reboots,
      uptimeMs: this.uptimeMs,
      faults: { ...this.faultsValue },
      transfer: this.flash.transferState(),
      sent: this.sent,
      received: this.received,
    };
  }

  /** The hello this device sends now. */
  helloMessage(): HelloMessage {
    return helloMessage(this);
  }

  /** Replaces the transport hooks (used by the adapters). */
  setHooks(hooks: SimDeviceHooks): void {
    this.hooks = hooks;
  }

  // -------------------------------------------------------------------------------------------
  // Link

  /**
   * A link came up: sends `hello` first, then telemetry every `intervalMs` and heartbeats when
   * idle. Attaching again replaces the previous link. Ignored while stopped or rebooting.
   */
  attach(send: SendFn): void {
    if (this.stopped || this.down) return;
    this.link.attach(send);
    this.attachesThisBoot++;
    this.emitHello();
    this.link.start(this.intervalMsValue);
    if (this.attachesThisBoot === 1 && this.faultsValue.crashLoopOnBoot) {
      this.faultTimers.armCrash(() => {
        if (this.faultsValue.crashLoopOnBoot) this.reboot('crash');
      });
    }
  }

  /** The link went down: stop sending (replies still pending for it are dropped). */
  detach(): void {
    this.link.detach();
  }

  /** Handles one host → device message (`cmd` and `fw.*`; anything else is ignored). */
  receive(msg: Message): void {
    if (this.stopped || this.down || !this.link.attached || this.faultsValue.mute) {
      this.ignored++;
      return;
    }
    this.received++;
    this.emit('received', msg);
    switch (msg.type) {
      case 'cmd':
        this.onCommand(msg);
        return;
      case 'fw.begin':
      case 'fw.chunk':
      case 'fw.verify':
      case 'fw.apply':
      case 'fw.confirm':
      case 'fw.rollback':
        this.onFirmware(msg);
        return;
      default:
        return; // a device → host type: not for us
    }
  }

  /** Sets (merges) faults; `undefined`/`false` clears one. */
  setFaults(faults: SimFaults): void {
    const next = mergeFaults(this.faultsValue, faults);
    this.faultsValue = next;
    if (!next.crashLoopOnBoot) this.faultTimers.disarmCrash();
  }

  /** Sends an `event` (seq from the shared counter). Returns false if nothing was sent. */
  sendEvent(name: string, severity?: Severity, data?: JsonObject): boolean {
    if (!this.link.canSend()) return false;
    return this.link.send(eventMessage(this.nextStamp(), name, severity, data));
  }

  /**
   * Reboots: detaches, takes the next boot value, restarts seq, lets the bootloader pick the
   * slot (an unconfirmed image that was not confirmed falls back to the previous slot) and
   * comes back up after `bootDelayMs`.
   */
  reboot(reason: RebootReason = 'requested'): void {
    if (this.stopped || this.down) return;
    this.down = true;
    this.detach();
    this.faultTimers.clearLater();
    this.faultTimers.disarmCrash();
    clearTimeout(this.identifyTimer);
    this.identifyTimer = undefined;
    this.identifyingUntil = 0;
    this.flash.boot();
    this.bootValue = (this.bootValue + 1) >>> 0;
    this.seqNext = 0;
    this.attachesThisBoot = 0;
    this.reboots++;
    this.emit('reboot', reason, this.bootValue);
    this.hooks.onShutdown?.(reason);

    this.bootTimer = setTimeout(() => {
      this.bootTimer = undefined;
      if (this.stopped) return;
      this.down = false;
      this.bootedAt = performance.now();
      if (this.hooks.onBoot) this.hooks.onBoot();
      else if (this.link.lastSend) this.attach(this.link.lastSend);
    }, this.bootDelayMs);
    this.bootTimer.unref();
  }

  /** Powers off: detaches and clears every timer. Final. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.detach();
    this.faultTimers.clearLater();
    this.faultTimers.disarmCrash();
    for (const t of [this.identifyTimer, this.bootTimer]) clearTimeout(t);
    this.identifyTimer = this.bootTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // What it sends (through the link, sim-link.ts)

  /** The boot, the next `seq` (taken) and the time, for a telemetry or event message. */
  private nextStamp(): Stamp {
    const seq = this.seqNext;
    this.seqNext = nextSeq(seq);
    return { boot: this.bootValue, seq, ts: this.now() };
  }

  private emitHello(): void {
    this.link.send(this.helloMessage());
  }

  private sendTelemetry(): void {
    if (!this.link.canSend()) return;
    let values: Record<string, number>;
    try {
      values = this.metricsFn ? this.metricsFn(this) : this.defaultMetrics(this.uptimeMs);
    } catch {
      return;
    }
    this.link.send(telemetryMessage(this.nextStamp(), values));
  }

  // -------------------------------------------------------------------------------------------
  // Commands (protocol §4) and firmware (§5)

  private onCommand(cmd: CommandMessage): void {
    const cached = this.replies.get(cmd.cmdId);
    if (cached) {
      this.link.answer(cached);
      return;
    }
    if (cmd.expiresAt !== undefined && this.now() > cmd.expiresAt) {
      const reply = expiredReply(cmd.cmdId, cmd.expiresAt, this.now());
      this.replies.remember(reply);
      this.link.answer(reply);
      return;
    }
    this.replies.countExecution(cmd.cmdId);
    const { reply, effect } = planCommand(cmd, this.configValue);
    const after = effect && this.carryOut(effect);
    this.replies.remember(reply);
    this.link.answer(reply, after);
  }

  /** Does what an accepted command changes now; returns what must wait until its reply went. */
  private carryOut(effect: CommandEffect): (() => void) | undefined {
    switch (effect.kind) {
      case 'hello':
        this.emitHello();
        return undefined;
      case 'reboot':
        return () => this.reboot('command');
      case 'identify': {
        const { ms, seconds } = effect;
        this.identifyingUntil = performance.now() + ms;
        clearTimeout(this.identifyTimer);
        this.identifyTimer = setTimeout(() => {
          this.identifyTimer = undefined;
          this.identifyingUntil = 0;
        }, ms);
        this.identifyTimer.unref();
        return () => this.sendEvent('identify', 'info', { seconds });
      }
      case 'setInterval':
        this.intervalMsValue = effect.ms;
        this.link.setInterval(effect.ms);
        return undefined;
      case 'setConfig':
        this.configValue = effect.config;
        return undefined;
    }
  }

  private onFirmware(msg: FwRequest): void {
    const { ack, reboot } = this.flash.handle(msg);
    this.link.answer(ack, reboot && (() => this.reboot(reboot)));
  }
}
