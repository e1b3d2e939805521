/**
 * Where a valid message from a link goes first ({@link LinkHub.deliver}): behind an adoption in
 * progress (kept in order, nothing lost); to another cluster instance's shadow (only its presence
 * is kept); to discovery, for a device the fleet does not know; else to the hub's dispatch
 * (src/transports/link-hub-dispatch.ts). Never throws: a handler that throws is reported.
 *
 * @example
 * const deliver = createHubDelivery({ runtime, fleet, sessions, session, owns, discovery, handle });
 * deliver('pump-7', telemetry, mqttLink); // the store write (telemetry), else undefined
 */
import type { Fleet } from '../devices/fleet.js';
import type { Runtime } from '../runtime/runtime.js';
import type { HubDiscovery } from './hub-discovery.js';
import type { HubHandler } from './link-hub-dispatch.js';
import type { LinkHandle, Session } from './link-session.js';
import type { DeviceId, HelloMessage, Message, StatusMessage } from './protocol.js';

export interface HubDeliveryOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly sessions: ReadonlyMap<string, Session>;
  /** The hub's session of a device (made when missing). */
  session(id: string): Session;
  /** This instance's share of the devices; undefined: all (see `LinkHubOptions.owns`). */
  readonly owns: ((deviceId: string) => boolean) | undefined;
  /** Told of every message on a link whose hello is the connection (a serial port); see `LinkHubOptions.heardOnPort`. */
  readonly heardOnPort?: ((deviceId: string, hello: boolean) => void) | undefined;
  readonly discovery: Pick<HubDiscovery, 'discovered' | 'unknownDevice'>;
  readonly handle: HubHandler;
}

export type HubDeliver = (
  deviceId: DeviceId,
  message: Message,
  link: LinkHandle,
) => Promise<unknown> | undefined;

export function createHubDelivery(options: HubDeliveryOptions): HubDeliver {
  const { runtime, fleet, sessions, session, owns, handle, heardOnPort } = options;
  const { discovered, unknownDevice } = options.discovery;

  function deliver(deviceId: DeviceId, message: Message, link: LinkHandle): Promise<unknown> | undefined {
    try {
      // Before `owns`: a serial device is pinned to the instance that has its port (a cluster).
      if (heardOnPort && link.presence === 'hello') heardOnPort(deviceId, message.type === 'hello');
      const s = sessions.get(deviceId);
      if (s?.pending) {
        // Behind an adoption in progress: keep the order, lose nothing.
        s.pending = s.pending.then(() => {
          deliver(deviceId, message, link);
        });
        return s.pending;
      }
      if (owns && !owns(deviceId)) {
        if (message.type === 'hello' || message.type === 'status')
          keepShadow(session(deviceId), message, link);
        return undefined;
      }
      if (!fleet.has(deviceId)) {
        if (owns && message.type !== 'hello' && s?.hello && s.link && !discovered.has(deviceId)) {
          // Its hello came while another instance owned its shard: that hello first, then this.
          unknownDevice(deviceId, s.hello, s.link);
          const adopting = s.pending;
          if (adopting) {
            s.pending = adopting.then(() => {
              deliver(deviceId, message, link);
            });
            return s.pending;
          }
        }
        unknownDevice(deviceId, message, link);
        return undefined;
      }
      return handle(deviceId, message, link);
    } catch (error) {
      runtime.report(`link hub: handling ${message.type} from ${deviceId} threw`, error);
      return undefined;
    }
  }

  return deliver;
}

/**
 * Another instance's device: its presence (hello, status, link) is kept, nothing else, so that it
 * is known connected at once when its shard moves here (`LinkHub.resync`).
 */
export function keepShadow(s: Session, m: HelloMessage | StatusMessage, link: LinkHandle): void {
  s.link = link;
  if (m.type === 'hello') s.hello = m;
  else s.status = { state: m.state, boot: m.boot, conn: m.conn };
}
