/**
 * What the Homie session model (src/conventions/homie/homie-model.ts) asks of the world, carried
 * out: adoption into the fleet, the machine's `HOMIE_STATE` and the link presence, telemetry, the
 * coalesced `status` write, `device.*` events (one store write per turn), echoes to the carrier,
 * log lines. No MQTT here: the bridge process owns the connection. A new device waiting for the
 * operator is announced within the per-minute budget every convention uses
 * (src/transports/discovered-list.ts `createAnnouncements`): 20 one by one, the rest summed up.
 *
 * @example
 * const model = new HomieModel({ baseTopic, now }, (effect) => sync.carryOut(effect));
 * const sync = new HomieFleetSync({ runtime, pid, name, fleet, store, model, … });
 * await sync.add(session); // manual adoption
 */

import type { DeviceEventLog } from '../../devices/device-event-log.js';
import { createDeviceEventLog } from '../../devices/device-event-log.js';
import type { Fleet, FleetResult } from '../../devices/fleet.js';
import { err } from '../../lib/result.js';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { JsonValue, Store } from '../../store/store.js';
import type { Announcements } from '../../transports/discovered-list.js';
import { createAnnouncements } from '../../transports/discovered-list.js';
import { MINUTE_MS } from '../../transports/minute-budget.js';
import type { HomieCarrier } from './homie-carrier.js';
import { HOMIE_KIND } from './homie-kind.js';
import type { HomieEffect, HomieModel } from './homie-model.js';
import { MAX_SHOWN } from './homie-model.js';
import type { Session } from './homie-session.js';
import { statusOf } from './homie-session.js';
import { quote } from './homie-values.js';

export type AddResult = { ok: true } | { ok: false; error: { code: string; message: string } };

export interface HomieFleetSyncOptions {
  readonly runtime: Runtime;
  /** The bridge process: it owns the timers and is named in reports and logs. */
  readonly pid: Pid;
  readonly name: string;
  readonly fleet: Fleet;
  readonly store: Store;
  readonly model: HomieModel;
  readonly baseTopic: string;
  readonly via: string;
  readonly adopt: 'auto' | 'manual';
  readonly statusDelayMs: number;
  /** The bridge process still runs (an add that ends after a stop changes nothing). */
  readonly running: () => boolean;
  /** The bridge stopped watching its devices: no status write is scheduled any more. */
  readonly closed: () => boolean;
  /** Live traffic from a device: the bridge checks its description for gaps. */
  readonly live: (s: Session) => void;
}

/** The fleet and store side of one bridge. */
export class HomieFleetSync {
  /** The kind's carrier, once the bridge is registered: it hears the echoes. */
  carrier: HomieCarrier | undefined;
  private readonly o: HomieFleetSyncOptions;
  private readonly runtime: Runtime;
  private readonly fleet: Fleet;
  /** Per device: the pending coalesced status write, and the last status written. */
  private readonly statusTimers = new Map<string, TimerRef>();
  private readonly lastStatus = new Map<string, string>();
  /** The shared device event log writer (one store write per turn). */
  private readonly eventLog: DeviceEventLog;
  private readonly writes = new Set<Promise<unknown>>();
  /** New devices waiting for the operator: announced one by one up to 20 a minute, the rest summed up. */
  private readonly announcements: Announcements;

  constructor(options: HomieFleetSyncOptions) {
    this.o = options;
    this.runtime = options.runtime;
    this.fleet = options.fleet;
    this.eventLog = createDeviceEventLog({ runtime: options.runtime, store: options.store });
    this.announcements = createAnnouncements({
      clock: options.runtime.clock,
      perMinute: 20,
      summarize: (count) => {
        this.runtime.logger.warn('more new Homie devices were discovered than announced one by one', {
          bridge: options.name,
          count,
          windowMs: MINUTE_MS,
        });
        this.eventLog.append(
          'device.discoveredSummary',
          undefined,
          { count, windowMs: MINUTE_MS, via: options.via },
          'normal',
        );
      },
    });
  }

  /** Carries out what the model asks, at once (the model reads the outcome, e.g. `adopted`). */
  carryOut(e: HomieEffect): void {
    switch (e.type) {
      case 'discover':
        this.discover(e.session);
        return;
      case 'status':
        this.scheduleStatus(e.session);
        return;
      case 'machineState': {
        this.fleet.deliver(e.session.id, { type: 'HOMIE_STATE', state: e.state });
        return;
      }
      case 'linkUp':
        this.fleetCall(e.session, this.fleet.linkUp(e.session.id, { via: this.o.via, firmware: e.firmware }));
        return;
      case 'linkDown':
        this.fleetCall(e.session, this.fleet.linkDown(e.session.id, e.reason));
        return;
      case 'touch':
        this.fleetCall(e.session, this.fleet.touch(e.session.id));
        return;
      case 'telemetry': {
        const id = e.session.id;
        this.track(this.fleet.ingestTelemetry(id, { [e.metric]: e.value }, null)).then(
          (res) => this.fleetCall(e.session, res),
          (error: unknown) =>
            this.runtime.report(`Homie bridge: telemetry of ${id} not stored`, error, this.o.pid),
        );
        return;
      }
      case 'echo':
        this.carrier?.echo(e.session.id, e.node, e.property, e.spec, e.text);
        return;
      case 'badMessage': {
        const { code, message, topic } = e;
        this.logEvent('device.badMessage', e.session.id, {
          code,
          message: message.slice(0, 300),
          topic: topic.slice(0, MAX_SHOWN),
          via: this.o.via,
        });
        this.runtime.logger.warn('bad message from Homie device', { deviceId: e.session.id, code, message });
        return;
      }
      case 'refused':
        this.runtime.logger.warn('Homie bridge refused a topic', {
          bridge: this.o.name,
          topic: quote(e.topic, MAX_SHOWN),
          why: e.why,
        });
        return;
      case 'stateChanged':
        this.runtime.logger.debug('Homie device state', { deviceId: e.session.id, from: e.from, to: e.to });
        return;
      case 'live':
        this.o.live(e.session);
        return;
    }
  }

  /** A fleet call refused with `notFound`: the operator removed the device; it is discovered again. */
  private fleetCall(s: Session, r: FleetResult<unknown>): undefined {
    if (r.ok || r.error.code !== 'notFound' || !s.adopted) return;
    s.adopted = false;
    s.notAdopted = 'removed from the fleet';
    this.runtime.logger.debug('Homie device removed from the fleet', { deviceId: s.id });
  }

  // ---- adoption ----

  /** `$homie` seen: is it in the fleet, and if not, does it join? */
  private discover(s: Session): void {
    if (s.adding) return;
    const d = this.fleet.device(s.id);
    if (d) {
      const base = d.attributes.baseTopic ?? 'homie';
      if (d.kind === HOMIE_KIND && base === this.o.baseTopic) {
        s.notAdopted = undefined;
        this.applyAll(s);
        return;
      }
      const why =
        d.kind !== HOMIE_KIND
          ? `the fleet has a ${d.kind} device '${s.id}'`
          : `the fleet's '${s.id}' lives under ${String(base)}/`;
      if (s.notAdopted !== why)
        this.runtime.logger.warn('Homie device not adopted', { deviceId: s.id, reason: why });
      s.notAdopted = why;
      return;
    }
    if (s.notAdopted === 'removed from the fleet') return; // until the operator adopts it again
    if (this.o.adopt === 'manual') {
      if (s.notAdopted !== 'manual') {
        s.notAdopted = 'manual';
        if (this.announcements.take()) {
          this.runtime.logger.info('Homie device waits for adoption', { deviceId: s.id, via: this.o.via });
          this.logEvent('device.discovered', s.id, { kind: HOMIE_KIND, via: this.o.via, reason: 'manual' });
        }
      }
      return;
    }
    void this.add(s);
  }

  /** Adds the device to the fleet (on discovery with `auto`, or the operator's adoption). */
  async add(s: Session): Promise<AddResult> {
    if (s.adding) return err('busy', `device ${s.id} is being added`);
    s.adding = true;
    const r = await this.fleet
      .addDevice({
        id: s.id,
        kind: HOMIE_KIND,
        name: s.name ?? s.id,
        attributes: { baseTopic: this.o.baseTopic },
      })
      .finally(() => {
        s.adding = false;
      });
    if (!this.o.running()) return err('stopped', 'the Homie bridge stopped');
    if (!r.ok && r.error.code !== 'alreadyExists') {
      s.notAdopted = `addFailed: ${r.error.message}`;
      this.runtime.logger.warn('Homie device could not be adopted', {
        deviceId: s.id,
        error: r.error.message,
      });
      return r;
    }
    if (!r.ok) {
      // Added meanwhile by someone else: the same checks as on discovery.
      s.notAdopted = undefined;
      this.discover(s);
      return s.adopted ? { ok: true } : err('conflict', s.notAdopted ?? 'not adopted');
    }
    this.runtime.logger.debug('Homie device adopted', { deviceId: s.id, via: this.o.via });
    s.notAdopted = undefined;
    this.applyAll(s);
    return { ok: true };
  }

  /** A device joins (or is found in) the fleet: everything known of it so far, at once. */
  private applyAll(s: Session): void {
    s.adopted = true;
    this.lastStatus.delete(s.id);
    this.scheduleStatus(s);
    this.o.model.replay(s);
  }

  // ---- status ----

  private scheduleStatus(s: Session): void {
    if (!s.adopted || this.statusTimers.has(s.id) || this.o.closed()) return;
    this.statusTimers.set(
      s.id,
      this.runtime.timers.schedule(this.o.statusDelayMs, () => this.reportStatusNow(s), {
        owner: this.o.pid,
        label: 'homie.status',
      }),
    );
  }

  private reportStatusNow(s: Session): void {
    const timer = this.statusTimers.get(s.id);
    if (timer) this.runtime.timers.cancel(timer);
    this.statusTimers.delete(s.id);
    if (!s.adopted) return;
    const status = statusOf(s, this.o.via);
    const json = JSON.stringify(status);
    if (json === this.lastStatus.get(s.id)) return;
    this.lastStatus.set(s.id, json);
    this.track(this.fleet.reportStatus(s.id, status)).then(
      (r) => this.fleetCall(s, r),
      (error: unknown) =>
        this.runtime.report(`Homie bridge: status of ${s.id} not stored`, error, this.o.pid),
    );
  }

  /** Nobody watches the devices any more: pending statuses are written, every adopted device goes down. */
  release(reason: string): void {
    for (const s of this.o.model.sessions.values()) {
      if (this.statusTimers.has(s.id)) this.reportStatusNow(s);
      if (s.adopted) this.fleet.linkDown(s.id, reason);
    }
  }

  // ---- store writes ----

  /** Resolves when every store write so far (events, status) is done. */
  async flush(): Promise<void> {
    for (const s of this.o.model.sessions.values()) if (this.statusTimers.has(s.id)) this.reportStatusNow(s);
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
    await this.eventLog.flush();
  }

  private logEvent(kind: string, deviceId: string, data: JsonValue): void {
    this.eventLog.append(kind, deviceId, data, 'normal');
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.writes.add(p);
    const done = () => this.writes.delete(p);
    p.then(done, done);
    return p;
  }
}
