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
 * @example
 * const device = new SimDevice({ id: 'pump-7', kind: 'pump', telemetryIntervalMs: 500 });
 * device.attach((msg) => link.write(encodeFrame(encodeMessage(msg)))); // sends hello, starts telemetry
 * device.receive({ v: 1, type: 'cmd', cmdId: 'c1', action: 'ping' });   // → reply ok
 * device.executed.get('c1'); // 1
 * device.setFaults({ slowReplyMs: 2000 });
 * device.stop();
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type {
  CommandMessage,
  EventMessage,
  FirmwareInfo,
  FwAckMessage,
  FwStep,
  HelloMessage,
  JsonObject,
  JsonValue,
  Message,
  ReplyMessage,
  Severity,
  Slot,
  WireError,
} from '../transports/protocol.js';
import { encodeMessage, nextSeq, parseDeviceId } from '../transports/protocol.js';

/** Lowest and highest telemetry interval (`telemetryIntervalMs`, the `setInterval` command). */
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;
/** Longest `identify` accepted, in seconds. */
export const MAX_IDENTIFY_SECONDS = 3600;
/** How many replies the device keeps for repeated `cmdId`s (protocol §4: at least 32). */
export const REPLY_CACHE_SIZE = 32;
/** Delay of a `crashLoopOnBoot` crash after the boot's hello. */
export const CRASH_AFTER_HELLO_MS = 200;

/** Actions the simulator implements (plus `fw`, the firmware transfer). */
export const SIM_ACTIONS = ['ping', 'hello', 'reboot', 'identify', 'setInterval', 'setConfig'] as const;

export type SendFn = (msg: Message) => void;

/** Why the device rebooted. */
export type RebootReason = 'command' | 'fwApply' | 'fwRollback' | 'crash' | 'requested';

export interface SimFirmwareOptions {
  /** Version in the active slot. */
  readonly version: string;
  /** Slot booted from; default `'A'`. */
  readonly slot?: Slot;
  /** Version held by the other slot; default `null` (empty). */
  readonly otherVersion?: string | null;
}

export interface SimFaults {
  /** A hung device: sends nothing at all and ignores everything it receives. */
  readonly mute?: boolean;
  /** Every reply and fw.ack goes out this many ms late. */
  readonly slowReplyMs?: number;
  /** Junk on the link: random bytes between serial frames; invalid JSON on the MQTT telemetry topic. */
  readonly garbage?: boolean;
  /** Reboot again ~200 ms after each boot's hello, until cleared. */
  readonly crashLoopOnBoot?: boolean;
}

/** Transport hooks around a reboot. Adapters set them; without them the device re-attaches by itself. */
export interface SimDeviceHooks {
  /** The device just went down for a reboot: it is detached already, its boot state is the new one. */
  readonly onShutdown?: (reason: RebootReason) => void;
  /** The device finished booting (`bootDelayMs` later): attach it to a link. */
  readonly onBoot?: () => void;
}

export interface SimDeviceOptions {
  /** Device id, 1–64 of `A–Z a–z 0–9 _ -`. */
  readonly id: string;
  /** Device kind sent in hello; default `'fleetvisor.generic'`. */
  readonly kind?: string;
  /** Firmware at power-on; default `{ version: '1.0.0' }` in slot A, confirmed, slot B empty. */
  readonly firmware?: SimFirmwareOptions;
  /** Telemetry period, 100…3 600 000 ms; default 1000. */
  readonly telemetryIntervalMs?: number;
  /** Heartbeat after this long without any other message; default 10 000. */
  readonly heartbeatMs?: number;
  /** Telemetry values; default temp (random walk 20–25 °C), rssi (dBm) and uptime (s). */
  readonly metrics?: (device: SimDevice) => Record<string, number>;
  /** Random source in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** Boot counter at power-on (uint32); default random. Every reboot adds 1 (wrapping). */
  readonly boot?: number;
  /** The device's wall clock in ms (for `ts` and `expiresAt`); default `Date.now`. */
  readonly now?: () => number;
  /** Time between going down and coming back up on a reboot; default 100 ms. */
  readonly bootDelayMs?: number;
  /** Largest firmware image the inactive slot takes; default 4 MiB. */
  readonly maxImageBytes?: number;
  /** Faults active from power-on. */
  readonly faults?: SimFaults;
  /** Set by the transport adapters. */
  readonly hooks?: SimDeviceHooks;
}

/** A firmware transfer into the inactive slot (kept across reboots, as in flash). */
export interface SimTransferState {
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly slot: Slot;
  /** Bytes held contiguously from 0. */
  readonly held: number;
  readonly verified: boolean;
}

/** A snapshot of the device for tests and the UI. */
export interface SimDeviceState {
  readonly id: string;
  readonly kind: string;
  readonly boot: number;
  /** The `seq` the next telemetry or event will carry. */
  readonly seq: number;
  readonly firmware: FirmwareInfo;
  readonly config: JsonObject;
  readonly intervalMs: number;
  readonly identifying: boolean;
  readonly attached: boolean;
  /** Down between a reboot and its `bootDelayMs`. */
  readonly rebooting: boolean;
  readonly reboots: number;
  readonly uptimeMs: number;
  readonly faults: SimFaults;
  readonly transfer: SimTransferState | undefined;
  readonly sent: number;
  readonly received: number;
}

export interface SimDeviceEvents {
  /** A message went to the link. */
  sent: [msg: Message];
  /** A host → device message arrived (and the device was up to take it). */
  received: [msg: Message];
  /** The device went down for a reboot; `boot` is the new boot value. */
  reboot: [reason: RebootReason, boot: number];
}

interface Transfer {
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly slot: Slot;
  /** From the last fw.begin of this transfer: no chunk may be longer. */
  chunkBytes: number;
  image: Uint8Array;
  held: number;
  verified: boolean;
}

interface Applied {
  readonly transferId: string;
  readonly slot: Slot;
  readonly previous: Slot;
  state: 'trial' | 'confirmed' | 'rolledBack' | 'reverted';
}

interface Attachment {
  readonly send: SendFn;
}

const other = (slot: Slot): Slot => (slot === 'A' ? 'B' : 'A');

function fail(cmdId: string, code: string, message: string): ReplyMessage {
  return { v: 1, type: 'reply', cmdId, ok: false, error: { code, message } };
}

function ok(cmdId: string, result?: JsonValue): ReplyMessage {
  return result === undefined
    ? { v: 1, type: 'reply', cmdId, ok: true }
    : { v: 1, type: 'reply', cmdId, ok: true, result };
}

function show(x: unknown): string {
  if (x === undefined) return 'nothing';
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function isUint32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

/** The executed-counter map is capped so a long simulation does not grow without bound. */
const MAX_EXECUTED_ENTRIES = 10_000;

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
  readonly capabilities: readonly string[] = [...SIM_ACTIONS, 'fw'];
  /** How many times each `cmdId` was really executed (duplicates and expired commands don't count). */
  readonly executed = new Map<string, number>();
  /** Messages sent to the link, all types. */
  sent = 0;
  /** Host → device messages taken in while up. */
  received = 0;
  /** Host → device messages ignored: muted, rebooting, stopped or not attached. */
  ignored = 0;
  /** Reboots since power-on. */
  reboots = 0;

  private readonly random: () => number;
  private readonly now: () => number;
  private readonly metricsFn: ((device: SimDevice) => Record<string, number>) | undefined;
  private hooks: SimDeviceHooks;

  private bootValue: number;
  private seqNext = 0;
  private bootedAt = performance.now();
  private attachesThisBoot = 0;
  private attachment: Attachment | undefined;
  private lastSend: SendFn | undefined;
  private down = false;
  private stopped = false;

  private intervalMsValue: number;
  private configValue: JsonObject = {};
  private identifyingUntil = 0;
  private faultsValue: SimFaults = {};
  private temp: number;

  private readonly replies = new Map<string, ReplyMessage>();

  // Firmware, "in flash".
  private slots: { A: string | null; B: string | null };
  private active: Slot;
  private confirmed = true;
  private nextBoot: { slot: Slot; confirmed: boolean } | undefined;
  private transfer: Transfer | undefined;
  private applied: Applied | undefined;

  private telemetryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private identifyTimer: NodeJS.Timeout | undefined;
  private crashTimer: NodeJS.Timeout | undefined;
  private bootTimer: NodeJS.Timeout | undefined;
  private readonly delayed = new Set<NodeJS.Timeout>();

  constructor(options: SimDeviceOptions) {
    super();
    const id = parseDeviceId(options.id);
    if (!id.ok) throw new RangeError(`SimDevice: bad id: ${id.error.message}`);
    this.id = id.value;
    this.kind = options.kind ?? 'fleetvisor.generic';
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.metricsFn = options.metrics;
    this.hooks = options.hooks ?? {};
    this.intervalMsValue = checkInterval(options.telemetryIntervalMs ?? 1000, 'telemetryIntervalMs');
    this.heartbeatMs = options.heartbeatMs ?? 10_000;
    if (!(Number.isFinite(this.heartbeatMs) && this.heartbeatMs >= 10)) {
      throw new RangeError(`SimDevice: heartbeatMs must be at least 10, got ${options.heartbeatMs}`);
    }
    this.bootDelayMs = options.bootDelayMs ?? 100;
    if (!(Number.isFinite(this.bootDelayMs) && this.bootDelayMs >= 0)) {
      throw new RangeError(`SimDevice: bootDelayMs must be ≥ 0, got ${options.bootDelayMs}`);
    }
    this.maxImageBytes = options.maxImageBytes ?? 4 * 1024 * 1024;
    const boot = options.boot ?? Math.floor(this.random() * 0x1_0000_0000);
    if (!isUint32(boot)) throw new RangeError(`SimDevice: boot must be a uint32, got ${options.boot}`);
    this.bootValue = boot;
    const fw = options.firmware ?? { version: '1.0.0' };
    this.active = fw.slot ?? 'A';
    this.slots = this.active === 'A' ? { A: fw.version, B: null } : { A: null, B: fw.version };
    this.slots[other(this.active)] = fw.otherVersion ?? null;
    this.temp = 20 + 5 * this.random();
    if (options.faults) this.faultsValue = { ...options.faults };
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
    return {
      version: this.slots[this.active] ?? '0',
      slot: this.active,
      confirmed: this.confirmed,
      slots: { A: this.slots.A, B: this.slots.B },
    };
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
    return this.attachment !== undefined;
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
    const t = this.transfer;
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
      transfer: t && {
        transferId: t.transferId,
        version: t.version,
        size: t.size,
        sha256: t.sha256,
        slot: t.slot,
        held: t.held,
        verified: t.verified,
      },
      sent: this.sent,
      received: this.received,
    };
  }

  /** The hello this device sends now. */
  helloMessage(): HelloMessage {
    return {
      v: 1,
      type: 'hello',
      deviceId: this.id as HelloMessage['deviceId'],
      kind: this.kind,
      boot: this.bootValue,
      firmware: this.firmware,
      capabilities: this.capabilities,
    };
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
    this.detach();
    this.attachment = { send };
    this.lastSend = send;
    this.attachesThisBoot++;
    this.emitHello();
    this.startTelemetry();
    this.heartbeatTimer = setTimeout(() => this.onHeartbeatDue(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    if (this.attachesThisBoot === 1 && this.faultsValue.crashLoopOnBoot && this.crashTimer === undefined) {
      this.crashTimer = setTimeout(() => {
        this.crashTimer = undefined;
        if (this.faultsValue.crashLoopOnBoot) this.reboot('crash');
      }, CRASH_AFTER_HELLO_MS);
      this.crashTimer.unref();
    }
  }

  /** The link went down: stop sending (replies still pending for it are dropped). */
  detach(): void {
    this.attachment = undefined;
    clearInterval(this.telemetryTimer);
    clearTimeout(this.heartbeatTimer);
    this.telemetryTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  /** Handles one host → device message (`cmd` and `fw.*`; anything else is ignored). */
  receive(msg: Message): void {
    if (this.stopped || this.down || this.attachment === undefined || this.faultsValue.mute) {
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
    const next: { -readonly [K in keyof SimFaults]: SimFaults[K] } = { ...this.faultsValue, ...faults };
    for (const key of Object.keys(next) as (keyof SimFaults)[]) {
      if (next[key] === undefined || next[key] === false || next[key] === 0) delete next[key];
    }
    if (next.slowReplyMs !== undefined && !(Number.isFinite(next.slowReplyMs) && next.slowReplyMs >= 0)) {
      throw new RangeError(`setFaults: slowReplyMs must be ≥ 0, got ${next.slowReplyMs}`);
    }
    this.faultsValue = next;
    if (!next.crashLoopOnBoot && this.crashTimer !== undefined) {
      clearTimeout(this.crashTimer);
      this.crashTimer = undefined;
    }
  }

  /** Sends an `event` (seq from the shared counter). Returns false if nothing was sent. */
  sendEvent(name: string, severity?: Severity, data?: JsonObject): boolean {
    if (!this.canSend()) return false;
    const msg: { -readonly [K in keyof EventMessage]: EventMessage[K] } = {
      v: 1,
      type: 'event',
      boot: this.bootValue,
      seq: this.takeSeq(),
      ts: this.now(),
      name,
    };
    if (severity !== undefined) msg.severity = severity;
    if (data !== undefined) msg.data = data;
    return this.send(msg);
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
    this.clearDelayed();
    clearTimeout(this.crashTimer);
    clearTimeout(this.identifyTimer);
    this.crashTimer = undefined;
    this.identifyTimer = undefined;
    this.identifyingUntil = 0;

    // The bootloader.
    if (this.nextBoot) {
      this.active = this.nextBoot.slot;
      this.confirmed = this.nextBoot.confirmed;
      this.nextBoot = undefined;
    } else if (!this.confirmed) {
      const previous = this.applied?.previous ?? other(this.active);
      if (this.slots[previous] !== null) {
        this.active = previous;
        this.confirmed = true;
        if (this.applied?.state === 'trial') this.applied.state = 'reverted';
      }
    }
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
      else if (this.lastSend) this.attach(this.lastSend);
    }, this.bootDelayMs);
    this.bootTimer.unref();
  }

  /** Powers off: detaches and clears every timer. Final. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.detach();
    this.clearDelayed();
    for (const t of [this.identifyTimer, this.crashTimer, this.bootTimer]) clearTimeout(t);
    this.identifyTimer = this.crashTimer = this.bootTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  private canSend(): boolean {
    return this.attachment !== undefined && !this.faultsValue.mute && !this.stopped;
  }

  private send(msg: Message): boolean {
    const att = this.attachment;
    if (att === undefined || this.faultsValue.mute || this.stopped) return false;
    try {
      att.send(msg);
    } catch {
      return false; // the adapter drops what it cannot send
    }
    this.sent++;
    this.heartbeatTimer?.refresh();
    this.emit('sent', msg);
    return true;
  }

  private takeSeq(): number {
    const seq = this.seqNext;
    this.seqNext = nextSeq(seq);
    return seq;
  }

  private emitHello(): void {
    this.send(this.helloMessage());
  }

  private startTelemetry(): void {
    clearInterval(this.telemetryTimer);
    this.telemetryTimer = setInterval(() => this.sendTelemetry(), this.intervalMsValue);
    this.telemetryTimer.unref();
  }

  private sendTelemetry(): void {
    if (!this.canSend()) return;
    let values: Record<string, number>;
    try {
      values = this.metricsFn ? this.metricsFn(this) : this.defaultMetrics();
    } catch {
      return;
    }
    this.send({ v: 1, type: 'telemetry', boot: this.bootValue, seq: this.takeSeq(), ts: this.now(), values });
  }

  private defaultMetrics(): Record<string, number> {
    this.temp = Math.min(25, Math.max(20, this.temp + (this.random() - 0.5) * 0.4));
    return {
      temp: Math.round(this.temp * 100) / 100,
      rssi: -40 - Math.floor(this.random() * 50),
      uptime: Math.floor(this.uptimeMs / 1000),
    };
  }

  private onHeartbeatDue(): void {
    const timer = this.heartbeatTimer;
    if (timer === undefined) return;
    if (!this.send({ v: 1, type: 'heartbeat', boot: this.bootValue, uptimeMs: this.uptimeMs }))
      timer.refresh();
  }

  /** Sends a reply or fw.ack now, or `slowReplyMs` later; `after` runs once it went (or would have). */
  private sendAnswer(msg: ReplyMessage | FwAckMessage, after?: () => void): void {
    const att = this.attachment;
    const go = () => {
      if (this.attachment === att) this.send(msg);
      after?.();
    };
    const delay = this.faultsValue.slowReplyMs ?? 0;
    if (delay <= 0) {
      go();
      return;
    }
    const t = setTimeout(() => {
      this.delayed.delete(t);
      if (!this.stopped) go();
    }, delay);
    t.unref();
    this.delayed.add(t);
  }

  private clearDelayed(): void {
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  private onCommand(cmd: CommandMessage): void {
    const cached = this.replies.get(cmd.cmdId);
    if (cached) {
      this.sendAnswer(cached);
      return;
    }
    if (cmd.expiresAt !== undefined && this.now() > cmd.expiresAt) {
      const reply = fail(
        cmd.cmdId,
        'expired',
        `command expired at ${new Date(cmd.expiresAt).toISOString()}; device clock is ${new Date(this.now()).toISOString()}`,
      );
      this.remember(reply);
      this.sendAnswer(reply);
      return;
    }
    this.executed.set(cmd.cmdId, (this.executed.get(cmd.cmdId) ?? 0) + 1);
    if (this.executed.size > MAX_EXECUTED_ENTRIES) {
      const oldest = this.executed.keys().next().value;
      if (oldest !== undefined) this.executed.delete(oldest);
    }
    const { reply, after } = this.execute(cmd);
    this.remember(reply);
    this.sendAnswer(reply, after);
  }

  private remember(reply: ReplyMessage): void {
    this.replies.set(reply.cmdId, reply);
    while (this.replies.size > REPLY_CACHE_SIZE) {
      const oldest = this.replies.keys().next().value;
      if (oldest === undefined) break;
      this.replies.delete(oldest);
    }
  }

  private execute(cmd: CommandMessage): { reply: ReplyMessage; after?: () => void } {
    const { cmdId, args } = cmd;
    switch (cmd.action) {
      case 'ping':
        return { reply: ok(cmdId) };
      case 'hello':
        this.emitHello();
        return { reply: ok(cmdId) };
      case 'reboot':
        return { reply: ok(cmdId), after: () => this.reboot('command') };
      case 'identify': {
        const raw = args?.seconds;
        const seconds = raw === undefined ? 5 : raw;
        if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= MAX_IDENTIFY_SECONDS)) {
          return {
            reply: fail(
              cmdId,
              'badArgs',
              `args.seconds must be a number of seconds, 0 < seconds ≤ ${MAX_IDENTIFY_SECONDS}; got ${show(raw)}`,
            ),
          };
        }
        const ms = Math.round(seconds * 1000);
        this.identifyingUntil = performance.now() + ms;
        clearTimeout(this.identifyTimer);
        this.identifyTimer = setTimeout(() => {
          this.identifyTimer = undefined;
          this.identifyingUntil = 0;
        }, ms);
        this.identifyTimer.unref();
        return {
          reply: ok(cmdId, { seconds }),
          after: () => this.sendEvent('identify', 'info', { seconds }),
        };
      }
      case 'setInterval': {
        const ms = args?.ms;
        if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
          return {
            reply: fail(
              cmdId,
              'badArgs',
              `args.ms must be an integer ${MIN_INTERVAL_MS}…${MAX_INTERVAL_MS} (milliseconds), got ${show(ms)}`,
            ),
          };
        }
        this.intervalMsValue = ms;
        if (this.telemetryTimer !== undefined) this.startTelemetry();
        return { reply: ok(cmdId, { ms }) };
      }
      case 'setConfig': {
        if (args === undefined) {
          return { reply: fail(cmdId, 'badArgs', 'args must be an object of settings to merge into config') };
        }
        const next: JsonObject = { ...this.configValue, ...args };
        const reply = ok(cmdId, next);
        try {
          encodeMessage(reply);
        } catch (err) {
          return {
            reply: fail(
              cmdId,
              'badArgs',
              `args: the merged config does not fit in a reply (${err instanceof Error ? err.message.slice(0, 200) : 'invalid'})`,
            ),
          };
        }
        this.configValue = next;
        return { reply };
      }
      default:
        return {
          reply: fail(
            cmdId,
            'unknownAction',
            `unknown action '${cmd.action}'; this device supports ${SIM_ACTIONS.join(', ')}`,
          ),
        };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Firmware (protocol §5)

  private ack(transferId: string, step: FwStep, offset: number, error?: WireError): FwAckMessage {
    return error === undefined
      ? { v: 1, type: 'fw.ack', transferId, step, offset }
      : { v: 1, type: 'fw.ack', transferId, step, offset, error };
  }

  private heldFor(transferId: string): number {
    return this.transfer?.transferId === transferId ? this.transfer.held : 0;
  }

  private unknownTransfer(transferId: string, step: FwStep): FwAckMessage {
    return this.ack(transferId, step, 0, {
      code: 'unknownTransfer',
      message: `no transfer '${transferId}' on this device`,
    });
  }

  private onFirmware(msg: Message): void {
    switch (msg.type) {
      case 'fw.begin': {
        const { transferId, size, sha256, version, chunkBytes } = msg;
        if (size > this.maxImageBytes) {
          this.sendAnswer(
            this.ack(transferId, 'begin', 0, {
              code: 'tooLarge',
              message: `image of ${size} bytes does not fit the ${this.maxImageBytes}-byte slot`,
            }),
          );
          return;
        }
        const t = this.transfer;
        if (t && t.transferId === transferId && t.size === size && t.sha256 === sha256) {
          t.chunkBytes = chunkBytes;
          // The host tries a rolled-back image again: forget the rollback, so fw.apply applies it anew.
          const a = this.applied;
          if (a && a.transferId === transferId && (a.state === 'rolledBack' || a.state === 'reverted')) {
            this.applied = undefined;
          }
          this.sendAnswer(this.ack(transferId, 'begin', t.held)); // resume
          return;
        }
        if (!this.confirmed) {
          this.sendAnswer(
            this.ack(transferId, 'begin', 0, {
              code: 'busy',
              message: `slot ${this.active} runs on trial; confirm or roll back first`,
            }),
          );
          return;
        }
        const slot = other(this.active);
        this.slots[slot] = null; // erasing the inactive slot
        this.transfer = {
          transferId,
          version,
          size,
          sha256,
          slot,
          chunkBytes,
          image: new Uint8Array(size),
          held: 0,
          verified: false,
        };
        this.sendAnswer(this.ack(transferId, 'begin', 0));
        return;
      }
      case 'fw.chunk': {
        const t = this.transfer;
        if (!t || t.transferId !== msg.transferId) {
          this.sendAnswer(this.unknownTransfer(msg.transferId, 'chunk'));
          return;
        }
        if (msg.data.length > t.chunkBytes) {
          this.sendAnswer(
            this.ack(t.transferId, 'chunk', t.held, {
              code: 'badChunk',
              message: `chunk of ${msg.data.length} bytes is longer than chunkBytes ${t.chunkBytes}`,
            }),
          );
          return;
        }
        const end = msg.offset + msg.data.length;
        if (end > t.size) {
          this.sendAnswer(
            this.ack(t.transferId, 'chunk', t.held, {
              code: 'badOffset',
              message: `chunk ends at byte ${end}, past the image size ${t.size}`,
            }),
          );
          return;
        }
        if (msg.offset <= t.held && end > t.held && t.slot !== this.active) {
          t.image.set(msg.data.subarray(t.held - msg.offset), t.held);
          t.held = end;
        }
        // A gap (offset past what we hold) is not written: the ack says where to go back to.
        this.sendAnswer(this.ack(t.transferId, 'chunk', t.held));
        return;
      }
      case 'fw.verify': {
        const t = this.transfer;
        if (!t || t.transferId !== msg.transferId) {
          this.sendAnswer(this.unknownTransfer(msg.transferId, 'verify'));
          return;
        }
        if (t.held < t.size) {
          this.sendAnswer(
            this.ack(t.transferId, 'verify', t.held, {
              code: 'incomplete',
              message: `slot ${t.slot} holds ${t.held} of ${t.size} bytes`,
            }),
          );
          return;
        }
        if (!t.verified) {
          const actual = createHash('sha256').update(t.image).digest('hex');
          if (actual !== t.sha256) {
            // A bad image is erased, so a resumed transfer starts again from 0.
            t.held = 0;
            t.image.fill(0);
            this.sendAnswer(
              this.ack(t.transferId, 'verify', 0, {
                code: 'hashMismatch',
                message: `sha256 of slot ${t.slot} is ${actual}, expected ${t.sha256}`,
              }),
            );
            return;
          }
          t.verified = true;
          this.slots[t.slot] = t.version;
        }
        this.sendAnswer(this.ack(t.transferId, 'verify', t.held));
        return;
      }
      case 'fw.apply': {
        const { transferId } = msg;
        const a = this.applied;
        if (a && a.transferId === transferId) {
          if (a.state === 'trial' || a.state === 'confirmed') {
            this.sendAnswer(this.ack(transferId, 'apply', this.heldFor(transferId))); // a repeat
          } else {
            this.sendAnswer(
              this.ack(transferId, 'apply', this.heldFor(transferId), {
                code: 'rolledBack',
                message: `transfer '${transferId}' was rolled back to slot ${a.previous}`,
              }),
            );
          }
          return;
        }
        const t = this.transfer;
        if (!t || t.transferId !== transferId) {
          this.sendAnswer(this.unknownTransfer(transferId, 'apply'));
          return;
        }
        if (!t.verified) {
          this.sendAnswer(
            this.ack(transferId, 'apply', t.held, {
              code: 'notVerified',
              message: `slot ${t.slot} has not passed fw.verify`,
            }),
          );
          return;
        }
        this.applied = { transferId, slot: t.slot, previous: this.active, state: 'trial' };
        this.nextBoot = { slot: t.slot, confirmed: false };
        this.sendAnswer(this.ack(transferId, 'apply', t.held), () => this.reboot('fwApply'));
        return;
      }
      case 'fw.confirm': {
        const { transferId } = msg;
        const a = this.applied;
        if (!a || a.transferId !== transferId) {
          if (this.transfer?.transferId === transferId) {
            this.sendAnswer(
              this.ack(transferId, 'confirm', this.transfer.held, {
                code: 'notApplied',
                message: `transfer '${transferId}' has not been applied; nothing runs on trial`,
              }),
            );
            return;
          }
          this.sendAnswer(this.unknownTransfer(transferId, 'confirm'));
          return;
        }
        if (a.state === 'trial' && this.active === a.slot) {
          this.confirmed = true;
          a.state = 'confirmed';
        }
        if (a.state === 'confirmed') {
          this.sendAnswer(this.ack(transferId, 'confirm', this.heldFor(transferId)));
          return;
        }
        this.sendAnswer(
          this.ack(transferId, 'confirm', this.heldFor(transferId), {
            code: 'rolledBack',
            message:
              a.state === 'reverted'
                ? `rebooted before confirm; back on slot ${a.previous}`
                : `transfer '${transferId}' was rolled back to slot ${a.previous}`,
          }),
        );
        return;
      }
      case 'fw.rollback': {
        const { transferId } = msg;
        const a = this.applied;
        if (a && a.transferId === transferId) {
          if (a.state === 'rolledBack' || a.state === 'reverted') {
            this.sendAnswer(this.ack(transferId, 'rollback', this.heldFor(transferId))); // a repeat
            return;
          }
          if (this.slots[a.previous] === null) {
            this.sendAnswer(
              this.ack(transferId, 'rollback', this.heldFor(transferId), {
                code: 'noImage',
                message: `slot ${a.previous} holds no image to go back to`,
              }),
            );
            return;
          }
          a.state = 'rolledBack';
          this.nextBoot = { slot: a.previous, confirmed: true };
          this.sendAnswer(this.ack(transferId, 'rollback', this.heldFor(transferId)), () =>
            this.reboot('fwRollback'),
          );
          return;
        }
        if (this.transfer?.transferId === transferId) {
          this.transfer = undefined; // abandon a transfer that was never applied
          this.sendAnswer(this.ack(transferId, 'rollback', 0));
          return;
        }
        this.sendAnswer(this.unknownTransfer(transferId, 'rollback'));
        return;
      }
      default:
        return;
    }
  }
}

function checkInterval(ms: number, name: string): number {
  if (!(Number.isInteger(ms) && ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS)) {
    throw new RangeError(
      `SimDevice: ${name} must be an integer ${MIN_INTERVAL_MS}…${MAX_INTERVAL_MS}, got ${ms}`,
    );
  }
  return ms;
}
