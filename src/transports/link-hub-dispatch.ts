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
 * Nothing here allocates per message beyond what the fleet's write needs: the handler is made once,
 * and a telemetry message's write is the fleet's turn, shared by every message of one socket read
 * (`Fleet.queueTelemetry`): the hub watches each turn once, not each message (issue 16).
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
) => ReturnType<Fleet['queueTelemetry']> | undefined;

export function createHubDispatch(options: HubDispatchOptions): HubHandler {
  const { fleet, session, notify, presence, countError, logEvent } = options;
  const { onHello, onStatus, aliveOn } = presence;
  /** The fleet's write of this turn's telemetry, and who sent its messages (see `watch`). */
  let watched: TurnWrite | undefined;
  let senders: Senders = { ids: [], sessions: [], links: [] };

  /**
   * Counts a refused write against each message's device, as a bad message of that device: once
   * per turn, not a `then` per message. A rejection is the link's to count and report.
   */
  function watch(write: TurnWrite, id: DeviceId, s: Session, link: LinkHandle): void {
    if (write !== watched) {
      watched = write;
      const turn: Senders = { ids: [], sessions: [], links: [] };
      senders = turn;
      write.then((r) => {
        if (watched === write) watched = undefined;
        if (r.ok) return;
        const error = { code: r.error.code, message: r.error.message };
        for (let i = 0; i < turn.ids.length; i++)
          countError(turn.ids[i]!, turn.sessions[i]!, error, turn.links[i]!.via);
      }, ignore);
    }
    senders.ids.push(id);
    senders.sessions.push(s);
    senders.links.push(link);
  }

  function handle(id: DeviceId, m: Message, link: LinkHandle): TurnWrite | undefined {
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
        // The message is its own origin: it has the boot and seq (no object made for them).
        const write = fleet.queueTelemetry(id, m.values, m.ts, m);
        watch(write, id, s, link);
        return write;
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

type TurnWrite = ReturnType<Fleet['queueTelemetry']>;

/** The senders of one turn's telemetry, message by message. */
interface Senders {
  readonly ids: DeviceId[];
  readonly sessions: Session[];
  readonly links: LinkHandle[];
}

const ignore = (): void => {};
