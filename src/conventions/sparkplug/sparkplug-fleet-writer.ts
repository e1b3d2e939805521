/**
 * Carries out the Sparkplug session model's effects on the fleet, the carrier, the device event
 * log and the logger (the effects on the broker stay with the bridge process). A status carrying
 * metric values is written at most every 250 ms per node or device; store writes are tracked so
 * that a flush waits for them.
 *
 * @example
 * const writer = new SparkplugFleetWriter({ runtime, fleet, store, carrier, pid, name, maxErrorEventsPerMinute: 10 });
 * writer.apply({ type: 'linkDown', id: 'Plant1-Line4', reason: 'NDEATH' });
 * await writer.flush();
 */
import type { DeviceEventLog } from '../../devices/device-event-log.js';
import { createDeviceEventLog } from '../../devices/device-event-log.js';
import type { Fleet } from '../../devices/fleet.js';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { JsonObject, Store } from '../../store/store.js';
import type { SparkplugCarrier } from './sparkplug-carrier.js';
import type { SparkplugEffect, SparkplugLog } from './sparkplug-effects.js';
import { VIA } from './sparkplug-effects.js';
import type { SparkplugEvent } from './sparkplug-kind.js';
import type { StatusMetric } from './sparkplug-metrics.js';

/** Least time between two status writes carrying metric values of one node or device. */
const SHOWN_VALUES_INTERVAL_MS = 250;

/** The effects on the broker and on the process itself, which the bridge carries out. */
export type SparkplugBrokerEffect = Extract<
  SparkplugEffect,
  { type: 'rebirthRequest' } | { type: 'publishOnline' } | { type: 'threw' }
>;

export type SparkplugFleetEffect = Exclude<SparkplugEffect, SparkplugBrokerEffect>;

export interface SparkplugFleetWriterOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly store: Store;
  readonly carrier: SparkplugCarrier;
  /** The bridge's: it owns the timer and is named in the logs. */
  readonly pid: Pid;
  readonly name: string;
  readonly maxErrorEventsPerMinute: number;
}

export class SparkplugFleetWriter {
  private readonly runtime: Runtime;
  private readonly fleet: Fleet;
  private readonly carrier: SparkplugCarrier;
  private readonly pid: Pid;
  private readonly name: string;
  private readonly eventLog: DeviceEventLog;
  /** Metric values to show, per fleet id, written at most every SHOWN_VALUES_INTERVAL_MS. */
  private readonly shownPending = new Map<string, StatusMetric[]>();
  private shownTimer: TimerRef | undefined;
  private readonly storeWrites = new Set<Promise<unknown>>();

  constructor(options: SparkplugFleetWriterOptions) {
    this.runtime = options.runtime;
    this.fleet = options.fleet;
    this.carrier = options.carrier;
    this.pid = options.pid;
    this.name = options.name;
    this.eventLog = createDeviceEventLog({
      runtime: options.runtime,
      store: options.store,
      maxPerWindow: options.maxErrorEventsPerMinute,
      windowMs: 60_000,
    });
  }

  apply(e: SparkplugFleetEffect): void {
    switch (e.type) {
      case 'linkUp':
        this.fleet.linkUp(e.id, { via: VIA, firmware: e.firmware ?? '' });
        return;
      case 'linkDown':
        this.fleet.linkDown(e.id, e.reason);
        return;
      case 'status':
        this.reportStatus(e.id, e.status);
        return;
      case 'machine':
        this.sendMachine(e.id, e.event);
        return;
      case 'telemetry':
        this.ingest(e.id, e.values, e.ts);
        return;
      case 'valueReported':
        this.carrier.valueReported(e.id, e.metric, e.datatype, e.value, e.reportedIn);
        return;
      case 'nodeBorn':
        this.carrier.nodeBorn(e.id, e.seq);
        return;
      case 'showValues':
        this.showValues(e.id, e.shown);
        return;
      case 'event':
        this.eventLog.append(e.kind, e.deviceId, e.data);
        return;
      case 'limitedEvent':
        if (this.eventLog.limited(e.kind, e.deviceId, e.data)) this.say(e.log);
        return;
      case 'log':
        this.say(e);
        return;
    }
  }

  /** Writes the pending metric values now; resolves when every store write so far is done. */
  async flush(): Promise<void> {
    this.writeShownValues();
    while (this.storeWrites.size > 0) await Promise.all([...this.storeWrites]);
    await this.eventLog.flush();
  }

  /** Stopping: the rate-limited events' summaries are written. */
  close(): Promise<void> {
    return this.eventLog.close();
  }

  /** Killed: no more metric values are written; the summaries are still attempted. */
  release(): void {
    if (this.shownTimer) this.runtime.timers.cancel(this.shownTimer);
    this.shownTimer = undefined;
    void this.eventLog.close();
  }

  private say(line: SparkplugLog): void {
    this.runtime.logger[line.level](line.message, { bridge: this.name, ...line.fields });
  }

  private sendMachine(id: string, event: SparkplugEvent): void {
    this.fleet.deliver(id, event);
  }

  private ingest(id: string, values: Record<string, number>, ts: number | null): void {
    void this.fleet.ingestTelemetry(id, values, ts).then((r) => {
      if (!r.ok)
        this.runtime.logger.warn('Sparkplug telemetry not stored', {
          bridge: this.name,
          id,
          error: r.error.message,
        });
    });
  }

  private reportStatus(id: string, status: JsonObject): void {
    this.track(
      this.fleet.reportStatus(id, status).then((r) => {
        if (!r.ok)
          this.runtime.logger.warn('Sparkplug status not stored', {
            bridge: this.name,
            id,
            error: r.error.message,
          });
      }),
    );
  }

  /** The status shows the metric's last value: written at most every SHOWN_VALUES_INTERVAL_MS. */
  private showValues(id: string, shown: StatusMetric[]): void {
    this.shownPending.set(id, shown);
    this.shownTimer ??= this.runtime.timers.schedule(
      SHOWN_VALUES_INTERVAL_MS,
      () => {
        this.shownTimer = undefined;
        this.writeShownValues();
      },
      { owner: this.pid, label: 'sparkplug.shownValues' },
    );
  }

  private writeShownValues(): void {
    if (this.shownTimer) this.runtime.timers.cancel(this.shownTimer);
    this.shownTimer = undefined;
    for (const [id, shown] of this.shownPending)
      if (this.fleet.has(id)) this.reportStatus(id, { metrics: shown.map((m) => ({ ...m })) });
    this.shownPending.clear();
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((error: unknown) =>
      this.runtime.report(`Sparkplug bridge ${this.name}: a store write failed`, error),
    );
    this.storeWrites.add(q);
    void q.finally(() => this.storeWrites.delete(q));
  }
}
