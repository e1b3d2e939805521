/**
 * A device's presence as the link hub decides it (docs/protocol.md §3): over MQTT "connected" is
 * the retained `status: online` of the same `boot` as its hello; over serial, the hello itself;
 * the will (or goodbye) of the connection believed current takes it down, a late will of an
 * older one is ignored; any message of the current boot is a sign of life; a device that sends
 * but whose hello this host never got is asked for one. The fleet hears `linkUp`/`linkDown`.
 *
 * @example
 * const presence = createLinkPresence({ runtime, fleet, logEvent });
 * presence.onHello('pump-7', session, hello, mqttLink); // linked; online once its status says so
 * presence.onStatus('pump-7', session, { …, state: 'online', boot: hello.boot }, mqttLink); // fleet.linkUp
 */
import type { Fleet } from '../devices/fleet.js';
import type { JsonValue } from '../lib/json.js';
import type { Runtime } from '../runtime/runtime.js';
import { createHelloAsker } from './hello-asker.js';
import { aliveRule, isConnected, isStaleOffline } from './link-presence-rules.js';
import type { LinkHandle, Session } from './link-session.js';
import type { DeviceId, HelloMessage, Message } from './protocol.js';

export { HELLO_ASK_EVERY_MS } from './hello-asker.js';

export interface LinkPresenceOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  logEvent(kind: string, deviceId: string | undefined, data: JsonValue): void;
  /** Every hello of a fleet device (a firmware job waits for the one after a reboot). */
  readonly onDeviceHello?: (deviceId: DeviceId, hello: HelloMessage) => void;
}

export interface LinkPresence {
  goOnline(id: string, s: Session, link: LinkHandle): void;
  goOffline(id: string, s: Session, reason: string, byStatus?: boolean): void;
  onHello(id: string, s: Session, hello: HelloMessage, link: LinkHandle): void;
  onStatus(id: string, s: Session, m: Extract<Message, { type: 'status' }>, link: LinkHandle): void;
  /** A message of boot `boot` (undefined for a reply) is a sign of life. */
  aliveOn(id: string, s: Session, link: LinkHandle, boot: number | undefined, type: string): void;
  /** True for the reply to a hello command of the presence's own (taken quietly). */
  ownReply(cmdId: string): boolean;
  /** Asks a device for its hello (src/transports/hello-asker.ts): one the fleet does not know yet. */
  askHello(id: string, link: LinkHandle, allow?: () => boolean): void;
}

export function createLinkPresence(options: LinkPresenceOptions): LinkPresence {
  const { runtime, fleet, logEvent } = options;
  const log = runtime.logger;
  const now = () => runtime.clock.wallNow();
  const helloAsker = createHelloAsker({ runtime });

  function goOnline(id: string, s: Session, link: LinkHandle): void {
    const firstHello = !s.online;
    s.online = true;
    s.link = link;
    const r = fleet.linkUp(id, { via: link.via, firmware: s.hello?.firmware.version ?? null });
    if (!r.ok) log.warn('link up for a device the fleet refused', { deviceId: id, error: r.error.message });
    if (firstHello) log.debug('device online', { deviceId: id, via: link.via });
  }

  function goOffline(id: string, s: Session, reason: string, byStatus = false): void {
    const was = s.online;
    if (s.link) s.down = { at: now(), via: s.link.via, byStatus };
    s.online = false;
    s.link = undefined;
    fleet.linkDown(id, reason);
    if (was) log.debug('device offline', { deviceId: id, reason });
  }

  function onHello(id: string, s: Session, hello: HelloMessage, link: LinkHandle): void {
    s.hello = hello;
    helloAsker.heard(id);
    options.onDeviceHello?.(id as DeviceId, hello);
    const fw = hello.firmware;
    void fleet.reportStatus(id, {
      firmware: fw.version,
      slot: fw.slot,
      confirmed: fw.confirmed,
      slots: fw.slots,
      capabilities: [...hello.capabilities],
      boot: hello.boot,
      via: link.via,
    });
    if (isConnected(link.presence, s.status, hello.boot)) goOnline(id, s, link);
    else s.link = link; // known, not yet (or no longer) connected: its status decides
  }

  function onStatus(id: string, s: Session, m: Extract<Message, { type: 'status' }>, link: LinkHandle): void {
    if (m.state === 'online') {
      s.status = { state: 'online', boot: m.boot, conn: m.conn };
      s.link = link;
      if (s.hello?.boot === m.boot) goOnline(id, s, link);
      return;
    }
    // offline: only the will (or goodbye) of the connection we believe current takes it down.
    if (isStaleOffline(s.status, m)) {
      const cur = s.status;
      log.debug('stale offline status ignored', { deviceId: id, boot: m.boot, conn: m.conn, current: cur });
      return;
    }
    s.status = { state: 'offline', boot: m.boot, conn: m.conn };
    goOffline(id, s, 'offline (last will or goodbye)', true);
  }

  /**
   * Any accepted message of the device's current boot is a sign of life (docs/protocol.md): a
   * device not yet online is brought online; one whose own status said `offline` (a will, a
   * goodbye, or a forged retained status) but that still sends from the same boot is brought back,
   * and the contradiction is written to its events. `boot` is the message's (undefined for a
   * reply, which answers a command of this session). A device whose hello is not known is asked
   * for one (src/transports/hello-asker.ts).
   */
  function aliveOn(id: string, s: Session, link: LinkHandle, boot: number | undefined, type: string): void {
    if (s.online) return;
    const rule = aliveRule(s, link.presence, boot);
    if (rule === 'askHello') helloAsker.ask(id, link);
    else if (rule === 'online') goOnline(id, s, link);
    else if (rule === 'contradiction' && s.hello && s.status) {
      const current = s.hello.boot;
      const said = s.status;
      logEvent('device.presenceContradiction', id, contradiction(said, type, current, link.via));
      log.warn('device said offline but still sends: back online', { deviceId: id, by: type, via: link.via });
      s.status = { state: 'online', boot: current, conn: said.conn };
      goOnline(id, s, link);
    }
    // 'olderBoot': a late message of an earlier boot, nothing.
  }

  return {
    goOnline,
    goOffline,
    onHello,
    onStatus,
    aliveOn,
    ownReply: helloAsker.ownReply,
    askHello: helloAsker.ask,
  };
}

/** The `device.presenceContradiction` event: its status `said` offline, but a `type` of boot `boot` came. */
export function contradiction(
  said: { readonly boot: number; readonly conn: number },
  type: string,
  boot: number,
  via: string,
): JsonValue {
  return { said: 'offline', statusBoot: said.boot, statusConn: said.conn, but: type, boot, via };
}
