/**
 * A device whose broker account is revoked while the app runs is shown disconnected at once, with
 * the reason ({@link ACCOUNT_REVOKED_REASON}, in its `device.offline` event), and its messages are
 * not taken until its account is issued again — not only when the broker ends its session: the
 * embedded broker does so within its accounts re-read (2 s) and its last will says only "offline",
 * and a Mosquitto with the dynamic security plugin ends it without a will, so the host used to keep
 * the device connected until its liveness timeout (30 s by default). A message that still arrives
 * from it before its session ends (its telemetry in flight) must not bring it back.
 *
 * Revocations are seen however they are made: `fleetvisor broker device revoke` in another
 * process (the accounts file, looked at every `everyMs`), and, at once, a device removed from the
 * fleet (through the API or the config), whose account the app revokes itself ({@link check}).
 *
 * Which devices are held back: those whose account went from live to revoked while this app runs
 * and whose link was not serial then (a serial device does not use the broker). Accounts revoked
 * before the start are the broker's business alone, as they were. A device is let in again when
 * its account is issued again (`device add|rotate`), or when it is added to the fleet again after
 * it was removed (the operator's explicit act).
 *
 * Deliberate: the hold is this host's view, not the broker's; with an external broker that does
 * not take account changes (no plugin), a revoked device can still connect there, and this host
 * ignores what it says until its account is issued again.
 *
 * @example
 * const revoked = watchRevokedDevices(setup, accounts);
 * revoked.attach(fleet, links);
 * links.attach(fleet, { owns: (id) => revoked.admits(id) });
 * // `fleetvisor broker device revoke pump-7` → pump-7 disconnected, "broker account revoked"
 */
import type { Fleet } from '../../devices/fleet.js';
import type { BrokerAccounts } from '../../transports/broker-accounts.js';
import type { Links } from '../../transports/links.js';
import type { DeviceId } from '../../transports/protocol.js';
import type { AppSetup } from './setup.js';

/** The reason a device revoked while connected is shown disconnected with. */
export const ACCOUNT_REVOKED_REASON = 'broker account revoked';

export interface RevokedDevices {
  /** False for a device held back (see the file comment): the links do not take its messages. */
  admits(deviceId: string): boolean;
  /** The fleet and links to act on from now; what was revoked before is acted on now. */
  attach(fleet: Fleet, links: Links): void;
  /** Looks at the accounts now (the app changed them in this process). */
  check(): void;
  /** Which devices are held back now, by id. */
  held(): string[];
  stop(): void;
}

interface Hold {
  /** Seen out of the fleet since held: added again, it is let in. */
  absent: boolean;
}

export function watchRevokedDevices(
  setup: Pick<AppSetup, 'log'>,
  accounts: BrokerAccounts,
  options: { readonly everyMs?: number } = {},
): RevokedDevices {
  const { log } = setup;
  const holds = new Map<string, Hold>();
  let fleet: Fleet | undefined;
  let links: Links | undefined;
  let seen = accounts.changes();
  let revoked = revokedIds(accounts);

  const linkVia = (id: string): string | null =>
    links?.hub?.stats(id)?.via ?? fleet?.device(id)?.link.via ?? null;

  function showDisconnected(id: string): void {
    if (!fleet) return;
    const device = fleet.device(id);
    if (!device || device.link.since === null) return; // never linked: nothing to show
    const via = links?.hub?.stats(id)?.via;
    // The hub's session goes down first (so its presence and the fleet's agree), then the reason
    // is said (again, if the device was down already: a will a moment earlier said only "offline").
    if (via) links?.hub?.linkLost(id as DeviceId, via, ACCOUNT_REVOKED_REASON);
    fleet.linkDown(id, ACCOUNT_REVOKED_REASON, { restate: true });
    log.info('device shown disconnected: its broker account was revoked', { deviceId: id });
  }

  function hold(id: string): void {
    if (linkVia(id)?.startsWith('serial')) return;
    holds.set(id, { absent: fleet !== undefined && !fleet.has(id) });
    showDisconnected(id);
  }

  function letIn(id: string, why: string): void {
    holds.delete(id);
    log.info(`device let in again: ${why}`, { deviceId: id });
    // What it said while held (its hello, its status) was kept: connected now if that says so.
    links?.hub?.resync((d) => d === id);
  }

  function check(): void {
    accounts.refresh();
    const count = accounts.changes();
    if (count !== seen) {
      seen = count;
      const now = revokedIds(accounts);
      for (const [id, at] of now) if (revoked.get(id) !== at) hold(id); // a new revocation
      for (const id of holds.keys()) if (!now.has(id)) letIn(id, 'its broker account was issued again');
      revoked = now;
    }
    if (!fleet) return;
    for (const [id, h] of holds) {
      if (!fleet.has(id)) h.absent = true;
      else if (h.absent) letIn(id, 'added to the fleet again');
    }
  }

  const timer = setInterval(check, options.everyMs ?? 500);
  timer.unref();

  return {
    admits: (id) => holds.size === 0 || !holds.has(id),
    attach(f, l) {
      fleet = f;
      links = l;
      for (const id of holds.keys()) showDisconnected(id);
    },
    check,
    held: () => [...holds.keys()],
    stop() {
      clearInterval(timer);
    },
  };
}

/** When each revoked account was revoked, by id. */
function revokedIds(accounts: BrokerAccounts): Map<string, number> {
  const revoked = new Map<string, number>();
  for (const d of accounts.devices()) if (d.revokedAt !== null) revoked.set(d.id, d.revokedAt);
  return revoked;
}
