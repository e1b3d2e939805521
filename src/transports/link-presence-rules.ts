/**
 * The presence rules of docs/protocol.md §3 as pure functions over a device's session, so each
 * is a table in a test: when a device is connected, which offline status is a late will, what a
 * message of a device not yet online means, and when an offline status was part of the host's
 * own drop of that link. src/transports/link-presence.ts acts on them.
 *
 * @example
 * isConnected('status', { state: 'online', boot: 4, conn: 1 }, 4); // true: MQTT, same boot
 * isStaleOffline({ state: 'online', boot: 4, conn: 2 }, { boot: 4, conn: 1 }); // true: an older will
 * aliveRule({ hello: undefined, status: undefined }, 'status', 4); // 'askHello'
 */
import type { LinkHandle, Session } from './link-session.js';

/** How long before the host's own broker drop a device's offline status counts as part of it. */
export const RESTATE_WINDOW_MS = 5000;

/**
 * Whether a device whose hello has boot `helloBoot` is connected: over serial (`hello` presence)
 * the hello itself is the connection; over MQTT, the retained `status: online` of the same boot
 * (a retained hello of a device that died long ago is not a connection).
 */
export function isConnected(
  presence: LinkHandle['presence'],
  status: Session['status'],
  helloBoot: number,
): boolean {
  return presence === 'hello' || (status?.state === 'online' && status.boot === helloBoot);
}

/**
 * An offline status that is not the will (or goodbye) of the connection believed current: the
 * current status is online, and this one is of another boot or an older connection. Ignored.
 */
export function isStaleOffline(
  current: Session['status'],
  offline: { readonly boot: number; readonly conn: number },
): boolean {
  return (
    current !== undefined &&
    current.state === 'online' &&
    (current.boot !== offline.boot || offline.conn < current.conn)
  );
}

/**
 * What a message of boot `boot` (undefined for a reply) means for a device not online now:
 * - `askHello`: its hello is not known here; ask for one;
 * - `online`: a sign of life (over serial, or no offline status of its own stands);
 * - `olderBoot`: a late message of an earlier boot, nothing;
 * - `contradiction`: its own status said offline but it still sends from the current boot.
 */
export type AliveRule = 'askHello' | 'online' | 'olderBoot' | 'contradiction';

export function aliveRule(
  s: Pick<Session, 'hello' | 'status'>,
  presence: LinkHandle['presence'],
  boot: number | undefined,
): AliveRule {
  if (!s.hello) return 'askHello';
  if (presence === 'hello' || s.status?.state !== 'offline') return 'online';
  if (boot !== undefined && boot !== s.hello.boot) return 'olderBoot';
  return 'contradiction';
}

/**
 * Whether the device's own offline status (a will a broker sends as it shuts down) came on link
 * `via` at most {@link RESTATE_WINDOW_MS} before the host's drop of that link at `t`: then the
 * host's drop is the reason, not the device's will.
 */
export function wentDownWithLink(s: Pick<Session, 'online' | 'down'>, via: string, t: number): boolean {
  return !s.online && s.down?.byStatus === true && s.down.via === via && t - s.down.at <= RESTATE_WINDOW_MS;
}
