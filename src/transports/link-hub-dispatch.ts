/**
 * What a message of a fleet device does, by type: the link hub's hot path (every MQTT telemetry
 * message passes here once). Telemetry and events are deduplicated by `(boot, seq)` in the
 * session's window (src/transports/link-session.ts): the fast path, which spares the store a
 * write. The guarantee is the store's key on (device, boot, seq), for both (docs/protocol.md §8):
 * a duplicate older than the window, or one after a restart of the host, is skipped there. Every
 * accepted message is told to the observers, then:
 * `hello`/`status` → presence (src/transports/link-presence.ts); `telemetry` → the fleet's store
 * write (returned, for the link's backpressure); `heartbeat` → liveness; `event` → the event log;
 * `reply` → the command tracker (src/transports/protocol-carrier.ts), or an `unknownCommand` bad
 * message; `fw.ack` → the firmware seam. A host → device type is a `wrongDirection` bad message.
 *
 * Nothing here allocates per message beyond what the fleet's write needs: the handler is made once.
 *
 * @example
 * const handle = createHubDispatch({ fleet, session, notify, presence, countError, logEvent });
 * const write = handle('pump-7', telemetry, mqttLink); // the store write, or undefined
 */
import type { Fleet } from '../devices/fleet.js';
import type { JsonValue } from '../lib/json.js';
import type { DeviceMessageId } from '../store/store.js';
import type { LinkPresence } from './link-presence.js';
import type { LinkHandle, Session } from './link-session.js';
import { firstTime } from './link-session.js';
import type { DeviceId, FwAckMessage, Message } from './protocol.js';
import { settleReply } from './protocol-carrier.js';

export interface HubDispatchOptions {
  readonly fleet: Fleet;
  /** The hub's session of a device (made when missing). */
  session(id: string): Session;
  /** An accepted message, for the observers. */
  notify(id: string, m: Message): void;
  readonly presence: LinkPresence;
  countError(id: string, s: Session, error: { code: string; message: string }, via: string): void;
  /** `message`: the device's (boot, seq) of an `event` message, the store's dedupe key. */
  logEvent(kind: string, deviceId: string | undefined, data: JsonValue, message?: DeviceMessageId): void;
  /** Firmware transfer acks (the firmware layer plugs in here). */
  readonly onFirmwareAck?: ((deviceId: DeviceId, ack: FwAckMessage) => void) | undefined;
}

/** Handles one message of a fleet device; for telemetry, returns the fleet's store write. */
export type HubHandler = (
  id: DeviceId,
  m: Message,
  link: LinkHandle,
) => ReturnType<Fleet['ingestTelemetry']> | undefined;

export function createHubDispatch(options: HubDispatchOptions): HubHandler {
  const { fleet, session, notify, presence, countError, logEvent } = options;
  const { onHello, onStatus, aliveOn } = presence;

  function handle(
    id: DeviceId,
    m: Message,
    link: LinkHandle,
  ): ReturnType<Fleet['ingestTelemetry']> | undefined {
    const s = session(id);
    s.received++;
    if ((m.type !== 'telemetry' && m.type !== 'event') || firstTime(s, m.boot, m.seq)) notify(id, m);
    else {
      s.duplicates++;
      return undefined;
    }
    switch (m.type) {
      case 'hello':
        onHello(id, s, m, link);
        return undefined;
      case 'status':
        onStatus(id, s, m, link);
        return undefined;
      case 'telemetry': {
        aliveOn(id, s, link, m.boot, m.type);
        const ingest = fleet.ingestTelemetry(id, m.values, m.ts, { boot: m.boot, seq: m.seq });
        void ingest.then((r) => {
          if (!r.ok) countError(id, s, { code: r.error.code, message: r.error.message }, link.via);
        });
        return ingest;
      }
      case 'heartbeat':
        aliveOn(id, s, link, m.boot, m.type);
        fleet.touch(id);
        return undefined;
      case 'event':
        aliveOn(id, s, link, m.boot, m.type);
        fleet.touch(id);
        logEvent(
          `device.event.${m.name}`,
          id,
          {
            severity: m.severity ?? 'info',
            boot: m.boot,
            seq: m.seq,
            deviceTs: m.ts,
            ...(m.data !== undefined ? { data: m.data as JsonValue } : {}),
          },
          { boot: m.boot, seq: m.seq },
        );
        return undefined;
      case 'reply':
        reply(id, s, m, link);
        return undefined;
      case 'fw.ack':
        fleet.touch(id);
        options.onFirmwareAck?.(id, m);
        return undefined;
      default:
        // Host → device types never arrive here: the links refuse them (wrongChannel / direction).
        countError(
          id,
          s,
          { code: 'wrongDirection', message: `'${m.type}' is a host → device message` },
          link.via,
        );
        return undefined;
    }
  }

  /** A reply: to the command tracker, unless it answers the hub's own hello command. */
  function reply(id: DeviceId, s: Session, m: Extract<Message, { type: 'reply' }>, link: LinkHandle): void {
    if (presence.ownReply(m.cmdId)) return; // its fresh hello came before this reply
    const outcome = settleReply(fleet.commands, id, m);
    if (outcome !== 'unknownCommand') {
      // A reply to a command of ours is a sign of life too (serial replies included).
      aliveOn(id, s, link, undefined, m.type);
      fleet.touch(id);
    } else
      countError(
        id,
        s,
        { code: 'unknownCommand', message: `reply for command ${m.cmdId}, never sent to ${id}` },
        link.via,
      );
  }

  return handle;
}
