/**
 * The Sparkplug carrier: how `write { metric, value }` (nodes and devices) and a node's `rebirth`
 * reach an edge node as NCMD/DCMD, inside the fleet's one command lifecycle
 * (src/devices/create-command-tracker.ts: audited before the wire, one final status in the store).
 *
 * - `prepare` checks a write against the metric's datatype from the birth; a bad one is refused
 *   `badArgs`, naming the metric and the datatype.
 * - Not queued (`queuesWhileOffline: false`): NCMD/DCMD go at QoS 0 and a new birth may change
 *   the metrics, so a command for a node or device without a birth is refused `offline`, and one
 *   the bridge cannot publish (no broker connection) ends `failed` with `noLink`.
 * - Sparkplug has no reply: a write is confirmed when its value comes back in a DATA or birth
 *   message ({@link SparkplugCarrier.valueReported}), a rebirth by the NBIRTH
 *   ({@link SparkplugCarrier.nodeBorn}); none within the reply time is `timedOut`, saying what did
 *   not come back. A death meanwhile ends it `failed` with `linkLost` (a write is not resent: it
 *   may have run).
 *
 * @example
 * const carrier = createSparkplugCarrier({ fleet, target: bridge, replyTimeoutMs: 10_000 });
 * fleet.setCarrier(SPARKPLUG_DEVICE_KIND, carrier);
 * // in the bridge, for each metric of a DDATA:
 * carrier.valueReported(deviceId, 'setpoint', 'Int32', 42, 'DDATA');
 */
import type { CommandCarrier, DispatchOutcome, TrackedCommand } from '../../devices/command-tracker.js';
import type { Fleet } from '../../devices/fleet.js';
import { err, ok } from '../../lib/result.js';
import type { Datatype, ScalarValue } from './sparkplug-codec.js';
import { BDSEQ_METRIC, checkWriteValue, REBIRTH_METRIC, sameValue, toJson } from './sparkplug-codec.js';

/** What the carrier needs of the bridge. */
export interface SparkplugCommandTarget {
  /**
   * A node or device as its birth described it; undefined when it is not born now. `node` tells a
   * node (which takes `rebirth`) from a device.
   */
  born(
    deviceId: string,
  ):
    | { readonly node: boolean; readonly metrics: ReadonlyMap<string, { readonly datatype: Datatype }> }
    | undefined;
  /** Publishes NCMD/DCMD with these metrics; false when the bridge has no broker connection. */
  publishCommand(
    deviceId: string,
    metrics: readonly { readonly name: string; readonly datatype: Datatype; readonly value: ScalarValue }[],
    rebirth: boolean,
  ): boolean;
}

export interface SparkplugCarrierOptions {
  readonly fleet: Fleet;
  readonly target: SparkplugCommandTarget;
  /** How long a command waits for its value (or NBIRTH) to come back; default 10 000 ms. */
  readonly replyTimeoutMs?: number;
}

export interface SparkplugCommandCounts {
  readonly sent: number;
  readonly succeeded: number;
  readonly timedOut: number;
  readonly failed: number;
}

export interface SparkplugCarrier extends CommandCarrier {
  /** A metric value reported by a node or device (DATA or birth): settles the writes it confirms. */
  valueReported(
    deviceId: string,
    metric: string,
    datatype: Datatype,
    value: unknown,
    reportedIn: string,
  ): void;
  /** An NBIRTH: settles the node's rebirth commands. */
  nodeBorn(deviceId: string, seq: number | null): void;
  /** Commands carried, by outcome, since the carrier was made. */
  counts(): SparkplugCommandCounts;
  /** Stops counting (the bridge stopped). */
  close(): void;
}

const shown = (metric: unknown) => String(metric).slice(0, 100);

export function createSparkplugCarrier(options: SparkplugCarrierOptions): SparkplugCarrier {
  const { fleet, target } = options;
  const counts = { sent: 0, succeeded: 0, timedOut: 0, failed: 0 };
  const mine = new Set<string>(); // commands this carrier put on the wire, counted when they end
  const stopListening = fleet.commands.listen((c) => {
    if (!mine.has(c.commandId) || c.status === 'sent' || c.status === 'pending') return;
    mine.delete(c.commandId);
    if (c.status === 'succeeded') counts.succeeded++;
    else if (c.status === 'timedOut') counts.timedOut++;
    else counts.failed++;
  });

  /** The typed value of a write for the metric as born now, or why not. */
  function checkWrite(
    deviceId: string,
    born: NonNullable<ReturnType<SparkplugCommandTarget['born']>>,
    metric: unknown,
    value: unknown,
  ): { ok: true; name: string; datatype: Datatype; value: ScalarValue } | { ok: false; message: string } {
    const name = String(metric);
    const def = born.metrics.get(name);
    if (!def || name === BDSEQ_METRIC) {
      const names = [...born.metrics.keys()].filter((n) => n !== BDSEQ_METRIC);
      const list = names.slice(0, 20).join(', ') + (names.length > 20 ? ', …' : '');
      return {
        ok: false,
        message: `write: ${deviceId} has no metric '${shown(name)}' in its birth (metrics: ${list})`,
      };
    }
    const checked = checkWriteValue(def.datatype, value);
    if (!checked.ok)
      return { ok: false, message: `write: metric '${shown(name)}' of ${deviceId}: ${checked.message}` };
    return { ok: true, name, datatype: def.datatype, value: checked.value };
  }

  const notBorn = (deviceId: string) =>
    `${deviceId} is offline (no birth since ${fleet.device(deviceId)?.link.reason ?? 'the host started'}); Sparkplug commands are not queued`;

  const carrier: SparkplugCarrier = {
    name: 'sparkplug',
    queuesWhileOffline: false,
    resendsAfterDrop: false,
    replyTimeoutMs: options.replyTimeoutMs ?? 10_000,

    describeTimeout(c: TrackedCommand) {
      const what =
        c.action === 'rebirth'
          ? 'no NBIRTH came'
          : `${c.deviceId} did not report ${shown(c.args.metric)} = ${JSON.stringify(c.args.value)} in a DATA message`;
      return `${what} within ${carrier.replyTimeoutMs} ms (Sparkplug commands have no reply: the new value must come back)`;
    },

    prepare({ deviceId, action, args }) {
      const born = target.born(deviceId);
      if (!born) return err('offline', notBorn(deviceId));
      if (action === 'rebirth' && born.node) return ok({});
      if (action !== 'write')
        return err(
          'badArgs',
          `a Sparkplug ${born.node ? 'node' : 'device'} has no command '${shown(action).slice(0, 40)}'`,
        );
      const checked = checkWrite(deviceId, born, args.metric, args.value);
      if (!checked.ok) return err('badArgs', checked.message);
      return ok({ metric: checked.name, value: args.value ?? null });
    },

    dispatch(c): DispatchOutcome {
      const born = target.born(c.deviceId);
      if (!born) return { ok: false, error: { code: 'offline', message: notBorn(c.deviceId) } };
      let metrics: { name: string; datatype: Datatype; value: ScalarValue }[];
      if (c.action === 'rebirth') metrics = [{ name: REBIRTH_METRIC, datatype: 'Boolean', value: true }];
      else {
        // Checked again: a new birth may have changed the metric since the write was asked.
        const checked = checkWrite(c.deviceId, born, c.args.metric, c.args.value);
        if (!checked.ok) return { ok: false, error: { code: 'badArgs', message: checked.message } };
        metrics = [{ name: checked.name, datatype: checked.datatype, value: checked.value }];
      }
      if (!target.publishCommand(c.deviceId, metrics, c.action === 'rebirth'))
        return {
          ok: false,
          error: {
            code: 'noLink',
            message: 'the Sparkplug bridge is not connected to the broker; nothing was sent',
          },
        };
      counts.sent++;
      mine.add(c.commandId);
      return 'sent';
    },

    valueReported(deviceId, metric, datatype, value, reportedIn) {
      for (const c of fleet.commands.open(deviceId)) {
        if (c.status !== 'sent' || c.action !== 'write' || c.args.metric !== metric) continue;
        const written = checkWriteValue(datatype, c.args.value);
        if (written.ok && sameValue(datatype, written.value, value))
          fleet.commands.settle(
            c.commandId,
            { ok: true, result: { value: toJson(value), reportedIn } },
            deviceId,
          );
      }
    },

    nodeBorn(deviceId, seq) {
      for (const c of fleet.commands.open(deviceId))
        if (c.status === 'sent' && c.action === 'rebirth')
          fleet.commands.settle(c.commandId, { ok: true, result: { seq } }, deviceId);
    },

    counts: () => ({ ...counts }),

    close() {
      stopListening();
    },
  };
  return carrier;
}
