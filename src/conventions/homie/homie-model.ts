/**
 * The Homie session model: what a received topic and payload does to the devices' sessions
 * (src/conventions/homie/homie-session.ts): device, node and property attributes, values, `$state`,
 * discovery, refusals and bad input. It has no MQTT client, no timers and no fleet: what must happen
 * outside is emitted as a {@link HomieEffect}, which the bridge process carries out at once, before
 * the model goes on (so the outcome of a fleet call, e.g. a device the operator removed, is seen by
 * the rest of the same message).
 *
 * @example
 * const effects: HomieEffect[] = [];
 * const model = new HomieModel({ baseTopic: 'homie', now: () => 0 }, (e) => effects.push(e));
 * model.receive('homie/boiler/$homie', Buffer.from('4.0.0'), true);
 * effects[0]; // { type: 'discover', session } — the process decides whether it joins the fleet
 */

import { isUtf8 } from 'node:buffer';
import type { BadMessageLimit } from '../../devices/bad-message-budget.js';
import { admitBadMessage, newBadMessageWindow } from '../../devices/bad-message-budget.js';
import { MINUTE_MS } from '../../transports/minute-budget.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, parseDeviceId } from '../../transports/protocol.js';
import type { HomieState } from './homie-kind.js';
import { isHomieState } from './homie-kind.js';
import type { HomieConventionOptions } from './homie-options.js';
import type { PropertyInfo, Session } from './homie-session.js';
import { describeSpec, isComplete, newSession, specOf } from './homie-session.js';
import type { ValueSpec } from './homie-values.js';
import { isHomieDatatype, isHomieId, parseFormat, parseValue, quote } from './homie-values.js';

/** How much of a topic a log line or an event shows. */
export const MAX_SHOWN = 140;
const MAX_TEXT = 1024;
const HOMIE_VERSION = /^([34])\.\d+(?:\.\d+)?$/;
/** Refused topics logged a minute (all are counted). */
const REFUSED_LIMIT: BadMessageLimit = { max: 10, windowMs: MINUTE_MS };

/** What the process must do for the model, in the order it must be done. */
export type HomieEffect =
  /** A device's `$homie` arrived first, or again while it is not adopted: does it join the fleet? */
  | { readonly type: 'discover'; readonly session: Session }
  /** Its status changed: report it (coalesced) if the device is adopted. */
  | { readonly type: 'status'; readonly session: Session }
  /** An adopted device's `$state`, as a `HOMIE_STATE` event for its machine. */
  | { readonly type: 'machineState'; readonly session: Session; readonly state: HomieState }
  /** An adopted device is reachable (firmware null: not known yet, the machine waits in `connecting`). */
  | { readonly type: 'linkUp'; readonly session: Session; readonly firmware: string | null }
  | { readonly type: 'linkDown'; readonly session: Session; readonly reason: string }
  /** An adopted device showed it is alive (`$stats/uptime`). */
  | { readonly type: 'touch'; readonly session: Session }
  /** A number from an adopted device (metric `node/prop`). */
  | { readonly type: 'telemetry'; readonly session: Session; readonly metric: string; readonly value: number }
  /** A value an adopted device published on a property: it may confirm a `set`. */
  | {
      readonly type: 'echo';
      readonly session: Session;
      readonly node: string;
      readonly property: string;
      readonly spec: ValueSpec;
      readonly text: string;
    }
  /** Bad input, to write as a `device.badMessage` event and log (within the per-minute bound). */
  | {
      readonly type: 'badMessage';
      readonly session: Session;
      readonly code: string;
      readonly message: string;
      readonly topic: string;
    }
  /** A refused topic, to log (at most 10 a minute). */
  | { readonly type: 'refused'; readonly topic: string; readonly why: string }
  | {
      readonly type: 'stateChanged';
      readonly session: Session;
      readonly from: HomieState | null;
      readonly to: HomieState;
    }
  /** Live (not retained) traffic from the device: time to check its description for gaps. */
  | { readonly type: 'live'; readonly session: Session };

export interface HomieModelOptions
  extends Pick<
    HomieConventionOptions,
    'maxDevices' | 'maxPropertiesPerDevice' | 'maxPayloadBytes' | 'maxErrorEventsPerMinute'
  > {
  readonly baseTopic: string;
  /** The wall clock in ms: first and last seen, the per-minute bounds. */
  readonly now: () => number;
}

/** The sessions of one base topic and what each publish does to them. */
export class HomieModel {
  readonly sessions = new Map<string, Session>();
  readonly counters = { received: 0, refused: 0, malformed: 0 };
  private readonly options: HomieModelOptions;
  private readonly emit: (effect: HomieEffect) => void;
  /** Refused topics are not any device's: one window for them all. */
  private readonly refusedWindow = newBadMessageWindow();
  private readonly badLimit: BadMessageLimit;

  constructor(options: HomieModelOptions, emit: (effect: HomieEffect) => void) {
    this.options = options;
    this.emit = emit;
    this.badLimit = { max: options.maxErrorEventsPerMinute ?? 10, windowMs: MINUTE_MS };
  }

  /** A publish under the base topic (or not: refused). */
  receive(topic: string, payload: Buffer, retained: boolean): undefined {
    this.counters.received++;
    const prefix = `${this.options.baseTopic}/`;
    if (!topic.startsWith(prefix)) return this.refuse(topic, 'not under the base topic');
    const levels = topic.slice(prefix.length).split('/');
    const id = levels[0]!;
    if (id.startsWith('$')) return; // $broadcast (v3) and other base-level topics: not a device
    if (levels.some((l) => l.includes('+') || l.includes('#')))
      return this.refuse(topic, 'a wildcard in a topic name');
    if (!isHomieId(id) || !parseDeviceId(id).ok)
      return this.refuse(topic, `${quote(id)} is not a Homie device id`);
    let s = this.sessions.get(id);
    if (!s) {
      if (payload.length === 0) return; // a retained message being cleared, of a device we never knew
      if (this.sessions.size >= (this.options.maxDevices ?? 10_000))
        return this.refuse(topic, `more than ${this.options.maxDevices ?? 10_000} Homie devices`);
      s = newSession(id, this.options.now());
      this.sessions.set(id, s);
    }
    s.lastSeen = this.options.now();
    const max = this.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (payload.length > max)
      return this.bad(
        s,
        'tooLarge',
        `${payload.length} bytes on ${topic.slice(prefix.length)}; at most ${max}`,
        topic,
      );
    if (!isUtf8(payload))
      return this.bad(s, 'notUtf8', `the payload on ${topic.slice(prefix.length)} is not UTF-8`, topic);
    this.handle(s, levels.slice(1), payload.toString('utf8'), retained, topic);
    if (!retained && levels.length === 2 && levels[1] === '$state') this.liveState(s);
    if (!retained) this.emit({ type: 'live', session: s });
  }

  /** A device joins (or is found in) the fleet: its `$state` and values known so far, at once. */
  replay(s: Session): void {
    this.applyState(s);
    const topic = `${this.options.baseTopic}/${s.id}`;
    for (const p of s.properties.values()) if (p.raw !== undefined) this.applyValue(s, p, topic, false);
  }

  /** The broker connection is lost: nobody can tell now, every device waits for its retained `$state`. */
  brokerLost(): void {
    for (const s of this.sessions.values()) {
      s.state = undefined;
      s.resyncAttempts = 0;
      if (s.adopted) this.emit({ type: 'linkDown', session: s, reason: 'broker unreachable' });
    }
  }

  /** The devices whose description has gaps (a few attempts each): a re-subscription is due for them. */
  takeResyncGaps(): string[] {
    const gaps: string[] = [];
    for (const x of this.sessions.values())
      if (x.resyncAttempts < 3 && (x.forceResync || !isComplete(x))) {
        x.resyncAttempts++;
        x.forceResync = false;
        gaps.push(x.id);
      }
    return gaps;
  }

  // ---- what devices say ----

  private handle(s: Session, path: string[], text: string, retained: boolean, topic: string): undefined {
    const [a, b, c] = path;
    if (a === undefined) return;
    if (a.startsWith('$')) return this.deviceAttribute(s, path, text, topic);
    if (!isHomieId(a)) {
      // v3 array nodes (`node_3/prop`) are not supported; other bad ids are the device's fault.
      if (/^[a-z0-9-]+_\d+$/.test(a)) return;
      return this.bad(s, 'badTopic', `${quote(a)} is not a Homie node id`, topic);
    }
    if (b === undefined) return;
    if (path.length === 2) {
      if (b.startsWith('$')) return this.nodeAttribute(s, a, b, text, topic);
      if (!isHomieId(b)) return this.bad(s, 'badTopic', `${quote(b)} is not a Homie property id`, topic);
      return this.propertyValue(s, a, b, text, retained, topic);
    }
    if (path.length === 3 && c !== undefined) {
      if (!isHomieId(b)) return this.bad(s, 'badTopic', `${quote(b)} is not a Homie property id`, topic);
      if (c === 'set') return; // a command (ours or another controller's), not a value
      if (c.startsWith('$')) return this.propertyAttribute(s, a, b, c, text, topic);
    }
    // Deeper topics (extensions) are not read.
  }

  private deviceAttribute(s: Session, path: string[], text: string, topic: string): undefined {
    const attr = path.join('/');
    if (text === '') return; // cleared (an empty retained publish)
    switch (attr) {
      case '$homie': {
        if (!HOMIE_VERSION.test(text))
          return this.bad(
            s,
            'badVersion',
            `$homie ${quote(text)} is not a supported Homie version (3.x, 4.x)`,
            topic,
          );
        const first = s.homie === undefined;
        s.homie = text;
        if (first || !s.adopted) this.emit({ type: 'discover', session: s });
        else this.status(s);
        return;
      }
      case '$state': {
        if (!isHomieState(text))
          return this.bad(
            s,
            'badState',
            `$state ${quote(text)} is not one of init, ready, disconnected, sleeping, alert, lost`,
            topic,
          );
        const previous = s.state;
        s.previousState = previous;
        s.state = text;
        if (text !== 'ready' && text !== 'alert') s.resyncAttempts = 0;
        if (previous !== text)
          this.emit({ type: 'stateChanged', session: s, from: previous ?? null, to: text });
        this.applyState(s);
        this.status(s);
        return;
      }
      case '$name':
        s.name = text.slice(0, MAX_TEXT);
        break;
      case '$nodes':
        s.nodeList = this.idList(s, text, '$nodes', topic, true);
        break;
      case '$fw/version': {
        const changed = s.firmware !== text;
        s.firmware = text.slice(0, 64);
        if (changed && s.adopted && (s.state === 'ready' || s.state === 'alert'))
          this.emit({ type: 'linkUp', session: s, firmware: s.firmware });
        break;
      }
      case '$fw/name':
        s.firmwareName = text.slice(0, MAX_TEXT);
        break;
      case '$implementation':
        s.implementation = text.slice(0, MAX_TEXT);
        break;
      case '$stats/uptime':
        if (s.adopted) this.emit({ type: 'touch', session: s });
        return;
      default:
        return; // $stats/*, $mac, $localip, $extensions …: not used
    }
    this.status(s);
  }

  /** A comma list of ids (`$nodes`, `$properties`); v3 array nodes (`name[]`) keep their name. */
  private idList(s: Session, text: string, what: string, topic: string, nodes: boolean): string[] {
    const out: string[] = [];
    for (const item of text.split(',')) {
      const id = nodes && item.endsWith('[]') ? item.slice(0, -2) : item;
      if (isHomieId(id)) out.push(id);
      else this.bad(s, 'badAttribute', `${what} lists ${quote(item)}, not a Homie id`, topic);
    }
    return out;
  }

  private nodeAttribute(s: Session, node: string, attr: string, text: string, topic: string): undefined {
    if (text === '') return;
    let n = s.nodes.get(node);
    if (!n) {
      n = { name: null, type: null, properties: undefined, array: null };
      s.nodes.set(node, n);
    }
    switch (attr) {
      case '$name':
        n.name = text.slice(0, MAX_TEXT);
        break;
      case '$type':
        n.type = text.slice(0, MAX_TEXT);
        break;
      case '$properties':
        n.properties = this.idList(s, text, `${node}/$properties`, topic, false);
        break;
      case '$array':
        n.array = text.slice(0, 64);
        break;
      default:
        return;
    }
    this.status(s);
  }

  private property(s: Session, node: string, property: string, topic: string): PropertyInfo | undefined {
    const key = `${node}/${property}`;
    let p = s.properties.get(key);
    if (p) return p;
    const max = this.options.maxPropertiesPerDevice ?? 1000;
    if (s.properties.size >= max) {
      if (!s.tooManyProperties) {
        s.tooManyProperties = true;
        this.bad(
          s,
          'tooManyProperties',
          `more than ${max} properties; ${key} and later ones are ignored`,
          topic,
        );
      }
      return undefined;
    }
    p = {
      node,
      property,
      name: null,
      datatype: undefined,
      format: null,
      unit: null,
      settable: undefined,
      retained: undefined,
      described: false,
      raw: undefined,
      appliedAs: undefined,
    };
    s.properties.set(key, p);
    return p;
  }

  private propertyAttribute(
    s: Session,
    node: string,
    property: string,
    attr: string,
    text: string,
    topic: string,
  ): undefined {
    const p = this.property(s, node, property, topic);
    if (!p) return;
    const key = `${node}/${property}`;
    if (text === '' && attr !== '$format' && attr !== '$unit' && attr !== '$name') return;
    const flag = (v: string) => {
      if (v === 'true' || v === 'false') return v === 'true';
      this.bad(s, 'badAttribute', `${key}/${attr} ${quote(v)} is not true or false`, topic);
      return undefined;
    };
    switch (attr) {
      case '$name':
        p.name = text.slice(0, MAX_TEXT) || null;
        break;
      case '$datatype':
        if (!isHomieDatatype(text)) {
          this.bad(s, 'badAttribute', `${key}/$datatype ${quote(text)} is not a Homie datatype`, topic);
          return;
        }
        p.datatype = text;
        this.checkFormat(s, p, topic);
        break;
      case '$format':
        p.format = text === '' ? null : text.slice(0, MAX_TEXT);
        this.checkFormat(s, p, topic);
        break;
      case '$unit':
        p.unit = text.slice(0, 64) || null;
        break;
      case '$settable':
        p.settable = flag(text) ?? p.settable;
        break;
      case '$retained':
        p.retained = flag(text) ?? p.retained;
        break;
      default:
        return;
    }
    p.described = true;
    // A value that came before its datatype was taken as a string: take it as what it is now.
    if (p.raw !== undefined && p.datatype !== undefined && p.appliedAs !== p.datatype)
      this.applyValue(s, p, topic, false);
    this.status(s);
  }

  private checkFormat(s: Session, p: PropertyInfo, topic: string): void {
    if (p.datatype === undefined || p.format === null) return;
    const f = parseFormat(p.datatype, p.format);
    if (!f.ok) this.bad(s, 'badAttribute', `${p.node}/${p.property}: ${f.message}`, topic);
  }

  private propertyValue(
    s: Session,
    node: string,
    property: string,
    text: string,
    retained: boolean,
    topic: string,
  ): undefined {
    const p = this.property(s, node, property, topic);
    if (!p) return;
    const replay = retained && p.raw === text && p.appliedAs === p.datatype;
    p.raw = text;
    if (s.adopted) this.emit({ type: 'echo', session: s, node, property, spec: specOf(p), text });
    if (replay) return; // the retained value again (a resubscription): already stored
    this.applyValue(s, p, topic, true);
  }

  /** Interprets `p.raw` with what is known of the property: telemetry, a text value, or bad. */
  private applyValue(s: Session, p: PropertyInfo, topic: string, report: boolean): void {
    const raw = p.raw;
    if (raw === undefined) return;
    const key = `${p.node}/${p.property}`;
    const spec = specOf(p);
    p.appliedAs = p.datatype;
    if (raw === '' && spec.datatype !== 'string') return; // cleared
    const r = parseValue(spec, raw);
    if (!r.ok) {
      if (report) this.bad(s, 'badValue', `${key} (${describeSpec(spec)}): ${r.message}`, topic);
      return;
    }
    const textual = spec.datatype !== 'integer' && spec.datatype !== 'float' && spec.datatype !== 'boolean';
    const before = s.values.get(key);
    if (textual) {
      const v = raw.slice(0, MAX_TEXT);
      if (before !== v) {
        s.values.set(key, v);
        this.status(s);
      }
    } else if (before !== undefined) {
      s.values.delete(key); // it was taken as text before its datatype arrived
      this.status(s);
    }
    if (r.number !== null && s.adopted)
      this.emit({ type: 'telemetry', session: s, metric: key, value: r.number });
  }

  /** An adopted device's `$state`: its machine and its link presence (src/conventions/homie/homie-kind.ts). */
  private applyState(s: Session): void {
    const state = s.state;
    if (!s.adopted || state === undefined) return;
    this.emit({ type: 'machineState', session: s, state });
    this.emit(presenceOf(s, state));
  }

  /**
   * A live `$state`. Every connection of a Homie device goes `init` → `ready`, announcing its
   * description in between; a `ready` (not back from `alert`) with no `init` before it means the
   * broker did not forward what came between (aedes), so the description may be stale.
   */
  private liveState(s: Session): void {
    if (s.state === 'init') s.sawInit = true;
    else if (s.state === 'ready') {
      if (!s.sawInit && s.previousState !== 'ready' && s.previousState !== 'alert') s.forceResync = true;
      s.sawInit = false;
    }
  }

  private status(s: Session): void {
    this.emit({ type: 'status', session: s });
  }

  // ---- bad input ----

  /** Counted; logged within {@link REFUSED_LIMIT}. */
  private refuse(topic: string, why: string): undefined {
    this.counters.refused++;
    if (admitBadMessage(this.refusedWindow, this.options.now(), REFUSED_LIMIT) === 'write')
      this.emit({ type: 'refused', topic, why });
  }

  /** Counted on the device by code; written within its budget (`maxErrorEventsPerMinute`). */
  private bad(s: Session, code: string, message: string, topic: string): undefined {
    this.counters.malformed++;
    s.errors[code] = (s.errors[code] ?? 0) + 1;
    if (admitBadMessage(s, this.options.now(), this.badLimit) === 'write')
      this.emit({ type: 'badMessage', session: s, code, message, topic });
  }
}

/** What a `$state` means for the fleet's link presence. */
function presenceOf(s: Session, state: HomieState): HomieEffect {
  switch (state) {
    case 'init':
      // No firmware: the fleet sends CONNECT only, so the machine waits in `connecting`.
      return { type: 'linkUp', session: s, firmware: null };
    case 'ready':
    case 'alert':
      return { type: 'linkUp', session: s, firmware: s.firmware ?? '' };
    case 'sleeping':
      return { type: 'linkDown', session: s, reason: 'sleeping' };
    case 'disconnected':
      return { type: 'linkDown', session: s, reason: 'disconnected' };
    case 'lost':
      return { type: 'linkDown', session: s, reason: 'lost (last will)' };
  }
}
