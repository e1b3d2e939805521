/**
 * When the host asks an edge node for its births again: a gap in its seq (0…255 across
 * NBIRTH/DBIRTH/NDATA/DDATA/DDEATH), or data before its birth. A request is NCMD
 * `Node Control/Rebirth = true`, at most once per `rebirthMinIntervalMs` while unanswered, and the
 * host's own requests at most `maxRebirthsPerMinute` per node (answered or not, so a node whose
 * every answer brings a new gap is not asked in a loop). The node and its born devices go `stale`
 * until the NBIRTH.
 *
 * @example
 * const rebirths = new SparkplugRebirths(ports, counters, names, { rebirthMinIntervalMs: 5000, maxRebirthsPerMinute: 6 });
 * rebirths.checkSeq(session, 7, 'NDATA'); // after seq 5: a gap, one `rebirthRequest` effect
 */
import type { SparkplugCounters, SparkplugModelPorts } from './sparkplug-effects.js';
import { badMessage, log } from './sparkplug-effects.js';
import type { SparkplugNames } from './sparkplug-names.js';
import type { DeviceSession, NodeSession } from './sparkplug-session.js';

export interface SparkplugRebirthOptions {
  readonly rebirthMinIntervalMs: number;
  readonly maxRebirthsPerMinute: number;
}

const WINDOW_MS = 60_000;

export class SparkplugRebirths {
  constructor(
    private readonly ports: SparkplugModelPorts,
    private readonly counters: SparkplugCounters,
    private readonly names: SparkplugNames,
    private readonly options: SparkplugRebirthOptions,
  ) {}

  /** The next seq of the node: a gap asks for a rebirth; a message without seq is a bad message. */
  checkSeq(s: NodeSession, seq: number | undefined, type: string): void {
    if (seq === undefined) {
      const own = this.names.ownNode(s);
      if (own) badMessage(this.ports, this.counters, own, 'noSeq', `${type} without seq`);
      return;
    }
    if (s.seq === null) {
      s.seq = seq;
      return;
    }
    const expected = (s.seq + 1) % 256;
    s.seq = seq;
    if (seq === expected) return;
    s.gaps++;
    this.counters.gaps++;
    log(this.ports, 'warn', 'Sparkplug seq gap', { id: s.id, type, expected, got: seq });
    this.request(s, `seq gap: expected ${expected}, got ${seq} (${type})`);
  }

  /**
   * Counted always; written as a `sparkplug.dataBeforeBirth` event (and a log line) at most
   * `maxErrorEventsPerMinute` times per node or device, the rest summed up when the window closes.
   */
  beforeBirth(s: NodeSession, d: DeviceSession | undefined, what: string, askRebirth = true): void {
    this.counters.dataBeforeBirth++;
    const own = d ? this.names.ownDevice(s, d) : this.names.ownNode(s);
    const data = { group: s.group, node: s.node, device: d?.device ?? null, what };
    this.ports.emit({
      type: 'limitedEvent',
      kind: 'sparkplug.dataBeforeBirth',
      deviceId: own,
      data,
      log: {
        level: 'info',
        message: 'Sparkplug data before birth',
        fields: { node: `${s.group}/${s.node}`, what, total: this.counters.dataBeforeBirth },
      },
    });
    if (askRebirth) this.request(s, what);
  }

  /**
   * NCMD `Node Control/Rebirth = true` at QoS 0, unless one is unanswered and recent. The node
   * and its born devices go `stale` until the NBIRTH. `automatic`: the host's own request, within
   * its budget (an operator's and an adoption's are not counted).
   */
  request(s: NodeSession, reason: string, automatic = true): boolean {
    if (!this.ports.connected()) return false;
    if (s.refusal !== undefined) return false; // its births would be refused again: never loop
    const now = this.ports.now();
    if (s.rebirthAskedAt !== null && now - s.rebirthAskedAt < this.options.rebirthMinIntervalMs) {
      this.counters.rebirthsSuppressed++;
      return false;
    }
    if (automatic && !this.budget(s, reason, now)) return false;
    s.rebirthAskedAt = now;
    s.rebirths++;
    this.counters.rebirthsRequested++;
    this.ports.emit({ type: 'rebirthRequest', group: s.group, node: s.node, at: now });
    log(this.ports, 'warn', 'Sparkplug rebirth requested', { node: `${s.group}/${s.node}`, reason });
    const own = this.names.ownNode(s);
    if (own) {
      this.ports.emit({ type: 'event', kind: 'device.rebirthRequested', deviceId: own, data: { reason } });
      if (s.born) {
        this.stale(own, `rebirth requested: ${reason}`);
        for (const d of s.devices.values())
          if (d.born && d.id) this.stale(d.id, `rebirth of its node requested: ${reason}`);
      }
    }
    return true;
  }

  private stale(id: string, reason: string): void {
    this.ports.emit({ type: 'machine', id, event: { type: 'STALE', reason } });
  }

  /** The host's own requests to one node: at most `maxRebirthsPerMinute`, noted once per minute past it. */
  private budget(s: NodeSession, reason: string, now: number): boolean {
    const w = s.rebirthWindow;
    if (now - w.start >= WINDOW_MS) {
      w.start = now;
      w.count = 0;
      w.noted = false;
    }
    if (w.count < this.options.maxRebirthsPerMinute) {
      w.count++;
      return true;
    }
    this.counters.rebirthsSuppressed++;
    if (!w.noted) {
      w.noted = true;
      const data = {
        group: s.group,
        node: s.node,
        limit: this.options.maxRebirthsPerMinute,
        windowMs: WINDOW_MS,
        reason,
      };
      this.ports.emit({
        type: 'event',
        kind: 'sparkplug.rebirthsThrottled',
        deviceId: this.names.ownNode(s),
        data,
      });
      log(this.ports, 'warn', 'Sparkplug rebirth requests throttled', data);
    }
    return false;
  }
}
