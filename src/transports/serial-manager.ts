/**
 * Serial discovery and hot-plug: watches a set of serial ports, keeps one {@link SerialLink}
 * process on every port that is present, and reopens ports after a failure or a replug.
 *
 * Ports are either configured paths (watched by polling for the path: ptys and
 * `/dev/serial/by-id/…` symlinks are not in `SerialPort.list()`, and a dangling symlink counts as
 * absent) or `'auto'` (`SerialPort.list()` filtered, USB ports by default). Each port is in one
 * state: `absent` → (appears) `opening` → `open` → (the link exits) `backoff` → `opening` …; a
 * port that disappears goes back to `absent` and is opened as soon as it is seen again, with no
 * operator action. Retries use the shared jittered exponential backoff (reconnect.ts), capped, reset once
 * a link has stayed up `stableMs`; a failing open never becomes a busy loop.
 *
 * Devices are known by what they say in `hello`, never by the port path (USB ports re-enumerate):
 * {@link SerialManager.linkFor} finds a device wherever it is plugged in now.
 *
 * All waiting goes through the runtime's timers; only the port I/O and the presence checks are real.
 *
 * @example
 * const serial = startSerialManager(rt, {
 *   ports: ['/dev/serial/by-id/usb-FTDI_pump-7-if00-port0'], // or 'auto'
 *   onMessage: (message, link) => fleet.deliver(link.deviceId, message),
 *   onError: (error, link) => rt.logger.warn(error.message, { path: link.path }),
 *   onPortDown: (path, deviceId, reason) => rt.logger.warn('serial port down', { path, deviceId, reason }),
 * });
 * serial.linkFor('pump-7')?.send({ v: 1, type: 'cmd', cmdId: 'c1', action: 'reboot' });
 * serial.ports(); // [{ path: '/dev/serial/by-id/…', state: 'open', deviceId: 'pump-7', attempts: 0 }]
 * await serial.stop(); // stops every link
 */
import { existsSync } from 'node:fs';
import type { ExitReason } from '../runtime/exit-reason.js';
import { formatExitReason } from '../runtime/exit-reason.js';
import { ProcessBase } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ChildCounts, ChildInfo, SupervisorLike } from '../runtime/supervisor.js';
import type { TimerRef } from '../runtime/timers.js';
import {
  countPortChildren,
  PORT_MAX_RESTARTS,
  PORT_PERIOD_MS,
  portChildInfo,
  RestartWindow,
} from './port-supervision.js';
import type { DeviceId, Message, Result } from './protocol.js';
import type { ReconnectOptions } from './reconnect.js';
import { backoffDelayMs, resolveReconnect } from './reconnect.js';
import type { SerialLink, SerialOpenError } from './serial-link.js';
import { startSerialLink } from './serial-link.js';
import type { SerialManagerOptions } from './serial-manager-options.js';
import { checkSerialManagerOptions } from './serial-manager-options.js';
import { SerialPortPoller } from './serial-port-discovery.js';

export type { SerialManagerOptions } from './serial-manager-options.js';
export { serialManagerOptionsSchema } from './serial-manager-options.js';
export type { PortInfo } from './serial-port-discovery.js';
export { isUsbPort } from './serial-port-discovery.js';

export type SerialPortStateName = 'absent' | 'opening' | 'open' | 'backoff';

export interface SerialPortState {
  readonly path: string;
  readonly state: SerialPortStateName;
  /** The device on the open link; when not open, the device last identified on this path. */
  readonly deviceId?: string;
  /** Consecutive failed opens or short-lived links (reset after a link stays up `stableMs`). */
  readonly attempts: number;
  readonly lastError?: string;
  /** Wall-clock time (epoch ms) of the next attempt, in `backoff`. */
  readonly nextAttemptAt?: number;
}

interface PortEntry {
  readonly path: string;
  state: SerialPortStateName;
  attempts: number;
  link: SerialLink | undefined;
  deviceId: DeviceId | undefined;
  /** The link that last identified a device here, and when (an order), so linkFor prefers the newest. */
  identifiedBy: SerialLink | undefined;
  identifiedSeq: number;
  lastError: string | undefined;
  nextAttemptAt: number | undefined;
  retryTimer: TimerRef | undefined;
  stableTimer: TimerRef | undefined;
  /** Links opened on this path after the first one (each reopen is a restart of the child). */
  restartCount: number;
  /** Whether a link has run on this path (the next open is then a restart). */
  hadLink: boolean;
  /** How the last link on this path ended. */
  lastExit: ExitReason | undefined;
}

/**
 * The manager process, a supervisor whose children are its ports' links (one per port, by path):
 * `whichChildren()` lists them, and a link killed (from the tree) or crashed is reopened after
 * its port's backoff (see port-supervision.ts for how that differs from OTP's one_for_one).
 * Made by {@link startSerialManager}.
 */
export class SerialManager extends ProcessBase implements SupervisorLike {
  readonly strategy = 'oneForOne' as const;
  readonly maxRestarts = PORT_MAX_RESTARTS;
  readonly periodMs = PORT_PERIOD_MS;
  private readonly restarts: RestartWindow;
  private readonly options: SerialManagerOptions;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly pollMs: number;
  private readonly entries = new Map<string, PortEntry>();
  /** Presence checks: configured paths, or the listing for `'auto'`. */
  private readonly poller: SerialPortPoller;
  private identifications = 0;
  /** Opens in flight: stop() waits for them, so no link is started behind its back. */
  private readonly attempts = new Set<Promise<void>>();

  constructor(runtime: Runtime, options: SerialManagerOptions) {
    super(runtime, 'supervisor', 'serial-manager');
    this.options = options;
    this.reconnectOptions = resolveReconnect(options.reconnect);
    this.pollMs = options.pollMs ?? 1000;
    this.restarts = new RestartWindow(() => runtime.clock.now(), PORT_PERIOD_MS);
    if (options.ports !== 'auto') for (const path of options.ports) this.entry(path);
    this.poller = new SerialPortPoller({
      runtime,
      owner: this.pid,
      pollMs: this.pollMs,
      ports: options.ports,
      ...(options.autoFilter ? { autoFilter: options.autoFilter } : {}),
      ...(options.listPorts ? { listPorts: options.listPorts } : {}),
      isRunning: () => this.status === 'running',
      observe: (isPresent, listed) => this.observe(isPresent, listed),
    });
  }

  /** Internal: first presence check now, then every `pollMs`. */
  begin(): void {
    this.started();
    this.poller.start();
  }

  /**
   * Every watched port and its state, in the order first seen.
   *
   * @example
   * serial.ports().filter((p) => p.state === 'backoff').map((p) => p.lastError);
   */
  ports(): SerialPortState[] {
    return [...this.entries.values()].map((e) => {
      const deviceId = e.link?.deviceId ?? e.deviceId;
      return {
        path: e.path,
        state: e.state,
        attempts: e.attempts,
        ...(deviceId === undefined ? {} : { deviceId }),
        ...(e.lastError === undefined ? {} : { lastError: e.lastError }),
        ...(e.nextAttemptAt === undefined ? {} : { nextAttemptAt: e.nextAttemptAt }),
      };
    });
  }

  /**
   * The live link of the device that said `hello` with this id, wherever it is plugged in.
   *
   * @example
   * serial.linkFor('pump-7')?.send(cmd);
   */
  linkFor(deviceId: string): SerialLink | undefined {
    let best: PortEntry | undefined;
    for (const e of this.entries.values()) {
      if (e.link?.alive && e.link.status === 'running' && e.link.deviceId === deviceId) {
        if (!best || e.identifiedSeq > best.identifiedSeq) best = e;
      }
    }
    return best?.link;
  }

  /** One child per watched port (newest first, as OTP lists a static supervisor's children). */
  whichChildren(): ChildInfo[] {
    return [...this.entries.values()].reverse().map((e) =>
      portChildInfo({
        id: e.path,
        process: e.link,
        status: e.state === 'open' ? 'running' : e.state === 'absent' ? 'stopped' : 'restarting',
        restartCount: e.restartCount,
        lastExit: e.lastExit,
      }),
    );
  }

  countChildren(): ChildCounts {
    return countPortChildren(this.whichChildren());
  }

  restartsInWindow(): number {
    return this.restarts.count();
  }

  /**
   * One health line per port: ok when its link is open (`detail` says the device, or why not).
   *
   * @example
   * serial.health(); // [{ name: 'serial /dev/ttyUSB0', ok: true, detail: 'open, pump-7' }]
   */
  health(): { readonly name: string; readonly ok: boolean; readonly detail: string }[] {
    return this.ports().map((p) => ({
      name: `serial ${p.path}`,
      ok: p.state === 'open',
      detail: `${p.state}${p.deviceId ? `, ${p.deviceId}` : ''}${p.lastError ? `: ${p.lastError}` : ''}`,
    }));
  }

  /** The live link on `path`, if it is open. */
  linkAt(path: string): SerialLink | undefined {
    const link = this.entries.get(path)?.link;
    return link?.status === 'running' ? link : undefined;
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.poller.stop();
    const links: SerialLink[] = [];
    for (const e of this.entries.values()) {
      this.cancelEntryTimers(e);
      if (e.link) links.push(e.link);
      e.link = undefined;
      e.state = 'absent';
      e.nextAttemptAt = undefined;
    }
    await Promise.all([...links.map((l) => l.stop()), ...this.attempts]);
  }

  protected override release(): void {
    this.poller.stop();
    for (const e of this.entries.values()) {
      this.cancelEntryTimers(e);
      e.link?.kill();
      e.link = undefined;
    }
  }

  private entry(path: string): PortEntry {
    let e = this.entries.get(path);
    if (!e) {
      e = {
        path,
        state: 'absent',
        attempts: 0,
        link: undefined,
        deviceId: undefined,
        identifiedBy: undefined,
        identifiedSeq: 0,
        lastError: undefined,
        nextAttemptAt: undefined,
        retryTimer: undefined,
        stableTimer: undefined,
        restartCount: 0,
        hadLink: false,
        lastExit: undefined,
      };
      this.entries.set(path, e);
    }
    return e;
  }

  /** One presence observation: ports a listing found are watched from now on. */
  private observe(isPresent: (path: string) => boolean, listed: ReadonlySet<string>): void {
    for (const path of listed) this.entry(path);
    for (const e of this.entries.values()) this.reconcile(e, isPresent(e.path));
  }

  /** Acts on one presence observation. */
  private reconcile(e: PortEntry, present: boolean): void {
    if (present && e.state === 'absent') {
      this.runtime.logger.debug('serial port appeared', { path: e.path });
      this.startAttempt(e);
    } else if (!present && e.state === 'backoff') {
      this.cancelEntryTimers(e);
      this.markAbsent(e);
    }
    // 'open': the link notices a vanished port itself (close, write timeout, silence).
    // 'opening': the attempt in flight settles it.
  }

  private markAbsent(e: PortEntry): void {
    e.state = 'absent';
    e.attempts = 0; // reappearing is a fresh start: the first attempt is immediate
    e.nextAttemptAt = undefined;
  }

  private startAttempt(e: PortEntry): void {
    const attempt = this.attempt(e).catch((error: unknown) => {
      this.runtime.report(`serial manager: opening ${e.path} failed unexpectedly`, error, this.pid);
      if (this.status === 'running' && e.state === 'opening') this.retryLater(e, String(error));
    });
    this.attempts.add(attempt);
    void attempt.finally(() => this.attempts.delete(attempt));
  }

  private async attempt(e: PortEntry): Promise<void> {
    e.state = 'opening';
    e.nextAttemptAt = undefined;
    let r: Result<SerialLink, SerialOpenError>;
    try {
      r = await startSerialLink(this.runtime, {
        ...this.options.link,
        path: e.path,
        name: `serial-link:${e.path}`,
        onMessage: (message, link) => this.onLinkMessage(e, message, link),
        onError: (error, link) => this.options.onError(error, link),
      });
    } catch (error) {
      // Bad link options (a RangeError): no retry will fix them, but keep the port visible and bounded.
      this.runtime.report(`serial manager: cannot start a link on ${e.path}`, error, this.pid);
      r = {
        ok: false,
        error: { code: 'openFailed', message: error instanceof Error ? error.message : String(error) },
      };
    }
    if (this.status !== 'running') {
      if (r.ok) await r.value.stop();
      return;
    }
    if (!r.ok) {
      e.lastError = r.error.message;
      this.retryLater(e, r.error.message);
      return;
    }
    const link = r.value;
    e.link = link;
    e.state = 'open';
    e.lastError = undefined;
    if (e.hadLink) {
      e.restartCount++;
      this.restarts.add();
    }
    e.hadLink = true;
    link.onExit((reason) => this.onLinkExit(e, link, reason));
    e.stableTimer = this.runtime.timers.schedule(
      this.reconnectOptions.stableMs,
      () => {
        e.stableTimer = undefined;
        e.attempts = 0;
      },
      { owner: this.pid, label: `serial.stable:${e.path}` },
    );
    try {
      this.options.onPortUp?.(link);
    } catch (error) {
      this.runtime.report('serial manager: onPortUp threw', error, this.pid);
    }
  }

  private onLinkMessage(e: PortEntry, message: Message, link: SerialLink): void {
    if (message.type === 'hello' && e.link === link) {
      e.deviceId = message.deviceId;
      if (e.identifiedBy !== link) {
        e.identifiedBy = link;
        e.identifiedSeq = ++this.identifications;
      }
    }
    this.options.onMessage(message, link);
  }

  private onLinkExit(e: PortEntry, link: SerialLink, reason: ExitReason): void {
    if (e.link !== link) return;
    e.link = undefined;
    e.lastExit = reason;
    if (e.stableTimer) this.runtime.timers.cancel(e.stableTimer);
    e.stableTimer = undefined;
    if (this.status !== 'running') return; // stopping: terminate() stops the links
    const text = formatExitReason(reason);
    e.lastError = text;
    try {
      this.options.onPortDown?.(e.path, link.deviceId, text);
    } catch (error) {
      this.runtime.report('serial manager: onPortDown threw', error, this.pid);
    }
    if (existsSync(e.path)) {
      this.retryLater(e, text);
    } else {
      this.runtime.logger.warn('serial port gone', { path: e.path, deviceId: link.deviceId, reason: text });
      this.markAbsent(e);
    }
  }

  private retryLater(e: PortEntry, error: string): void {
    const delayMs = backoffDelayMs(e.attempts, this.reconnectOptions, this.options.random);
    e.attempts++;
    e.state = 'backoff';
    e.nextAttemptAt = this.runtime.clock.wallNow() + delayMs;
    this.runtime.logger.warn('serial port failed; retrying', {
      path: e.path,
      error,
      attempts: e.attempts,
      retryInMs: delayMs,
    });
    e.retryTimer = this.runtime.timers.schedule(
      delayMs,
      () => {
        e.retryTimer = undefined;
        if (this.status !== 'running' || e.state !== 'backoff') return;
        if (existsSync(e.path)) this.startAttempt(e);
        else this.markAbsent(e);
      },
      { owner: this.pid, label: `serial.retry:${e.path}` },
    );
  }

  private cancelEntryTimers(e: PortEntry): void {
    if (e.retryTimer) this.runtime.timers.cancel(e.retryTimer);
    if (e.stableTimer) this.runtime.timers.cancel(e.stableTimer);
    e.retryTimer = undefined;
    e.stableTimer = undefined;
  }
}

/**
 * Starts the serial manager (a process of kind `supervisor`): checks presence at once, opens
 * every present port, and keeps doing so every `pollMs` until stopped. Throws `RangeError` for
 * bad options, naming the field.
 *
 * @example
 * const serial = startSerialManager(rt, { ports: 'auto', onMessage, onError });
 */
export function startSerialManager(runtime: Runtime, options: SerialManagerOptions): SerialManager {
  checkSerialManagerOptions(options);
  const manager = new SerialManager(runtime, options);
  manager.begin();
  return manager;
}
