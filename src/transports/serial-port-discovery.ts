/**
 * Where serial ports are: the presence poll of the serial manager. Configured paths are checked
 * with `existsSync` (ptys and `/dev/serial/by-id/…` symlinks are not in `SerialPort.list()`, and a
 * dangling symlink counts as absent); `'auto'` lists the ports (`SerialPort.list()` by default) and
 * keeps those the filter wants, USB ports by default. The poll reports each observation; what to
 * open or drop is the manager's business (serial-manager.ts).
 *
 * @example
 * const poller = new SerialPortPoller({ runtime, owner: pid, pollMs: 1000, ports: 'auto',
 *   isRunning, observe: (isPresent, listed) => reconcile(isPresent, listed) });
 * poller.start(); // observes now, then every pollMs
 * poller.stop();
 */
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import type { Pid } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';

/** What `SerialPort.list()` says about one port. */
export type PortInfo = Awaited<ReturnType<typeof SerialPort.list>>[number];

const USB_PATH = /tty(USB|ACM)/;

/** The default `autoFilter`: USB serial ports only. */
export function isUsbPort(info: PortInfo): boolean {
  return (typeof info.vendorId === 'string' && info.vendorId.length > 0) || USB_PATH.test(info.path);
}

/**
 * The paths of the listed ports that `filter` wants, in listing order. An entry without a path is
 * skipped; a filter that throws is reported through `onFilterError` and the port is not wanted.
 *
 * @example
 * wantedPorts([{ path: '/dev/ttyUSB0' }, { path: '/dev/ttyS0' }], isUsbPort, report); // Set { '/dev/ttyUSB0' }
 */
export function wantedPorts(
  infos: readonly PortInfo[],
  filter: (info: PortInfo) => boolean,
  onFilterError: (error: unknown) => void,
): Set<string> {
  const present = new Set<string>();
  for (const info of infos) {
    let wanted = false;
    try {
      wanted = typeof info?.path === 'string' && info.path.length > 0 && filter(info);
    } catch (error) {
      onFilterError(error);
    }
    if (wanted) present.add(info.path);
  }
  return present;
}

export interface SerialPortPollerOptions {
  readonly runtime: Runtime;
  /** The pid owning the poll timer (and named in reports). */
  readonly owner: Pid;
  readonly pollMs: number;
  /** Configured paths (checked with `existsSync`) or `'auto'` (listed). */
  readonly ports: readonly string[] | 'auto';
  readonly autoFilter?: (info: PortInfo) => boolean;
  readonly listPorts?: () => Promise<PortInfo[]>;
  /** Whether the owner still runs; a poll or a listing that finishes after it stopped does nothing. */
  isRunning(): boolean;
  /**
   * One observation: `isPresent` answers for any watched path; `listed` holds the wanted paths a
   * listing found (`'auto'`), empty for configured paths.
   */
  observe(isPresent: (path: string) => boolean, listed: ReadonlySet<string>): void;
}

const NONE: ReadonlySet<string> = new Set();

/** Polls presence every `pollMs` on the runtime's timers. */
export class SerialPortPoller {
  private readonly o: SerialPortPollerOptions;
  private timer: TimerRef | undefined;
  private listing = false;

  constructor(options: SerialPortPollerOptions) {
    this.o = options;
  }

  /** The first observation now, then one every `pollMs`. */
  start(): void {
    this.poll();
  }

  /** Cancels the next poll (a listing in flight is ignored once the owner stops running). */
  stop(): void {
    if (this.timer) this.o.runtime.timers.cancel(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    this.timer = undefined;
    if (!this.o.isRunning()) return;
    if (this.o.ports === 'auto') this.pollListed();
    else this.o.observe((path) => existsSync(path), NONE);
    this.timer = this.o.runtime.timers.schedule(this.o.pollMs, () => this.poll(), {
      owner: this.o.owner,
      label: 'serial.poll',
    });
  }

  private pollListed(): void {
    if (this.listing) return; // the previous listing is still running
    this.listing = true;
    const list = this.o.listPorts ?? (() => SerialPort.list());
    const filter = this.o.autoFilter ?? isUsbPort;
    let pending: Promise<PortInfo[]>;
    try {
      pending = Promise.resolve(list());
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (infos) => {
        this.listing = false;
        if (!this.o.isRunning()) return;
        const present = wantedPorts(infos, filter, (error) =>
          this.o.runtime.report('serial manager: autoFilter threw', error, this.o.owner),
        );
        this.o.observe((path) => present.has(path), present);
      },
      (error: unknown) => {
        this.listing = false;
        this.o.runtime.logger.warn('serial manager: listing ports failed', {
          error: error instanceof Error ? error.message : String(error),
        });
      },
    );
  }
}
