/**
 * On an external Mosquitto with the dynamic security plugin, the data folder's device accounts
 * follow every change live: at the host's start it reconciles the broker's clients with the
 * accounts (src/transports/mosquitto-dynsec-sync.ts), then again after each change — a device
 * added or rotated (`fleetvisor broker device add|rotate`, another process: the accounts file is
 * looked at every `pollMs`), revoked, or removed from the fleet (in this process: at once). No
 * Mosquitto restart, as long as the host's account may use `$CONTROL/dynamic-security/v1` (the
 * file `fleetvisor broker mosquitto-dynsec` writes grants it).
 *
 * When the broker does not take changes (no plugin, or the host may not use it), the accounts stay
 * changed in the data folder as before, the handover of new secrets stops, and the host says once
 * that the plugin file must be written again and Mosquitto restarted; it asks again at the next
 * change. An unreachable broker is asked again every `retryMs`. Nothing here throws into the app.
 *
 * @example
 * const sync = startAccountsSync(setup, { mqtt, accounts });
 * await sync.syncNow(); // { ok: true, value: { made: ['pump-7'], removed: [], … } }
 * await sync.stop();
 */
import type { Failure, Result } from '../../lib/result.js';
import type { Logger } from '../../runtime/runtime.js';
import type { BrokerAccounts } from '../../transports/broker-accounts.js';
import { closeHandover, handoverOpen, openHandover } from '../../transports/broker-accounts-handover.js';
import type { MqttSettings } from '../../transports/links.js';
import type { DynsecControlCode } from '../../transports/mosquitto-dynsec-control.js';
import type { DynsecSyncReport } from '../../transports/mosquitto-dynsec-sync.js';
import { syncDynsecAccounts } from '../../transports/mosquitto-dynsec-sync.js';
import { instanceIdOf } from '../data-folder.js';
import type { AppSetup } from './setup.js';

export type AccountsSyncOutcome = Result<DynsecSyncReport, Failure<DynsecControlCode | 'off'>>;

export interface AccountsSync {
  /** The accounts, as the app changes them: each change is followed by a pass. */
  readonly accounts: BrokerAccounts;
  /** A pass now (after the one running); its outcome (`off`: stopped, or no broker account). */
  syncNow(): Promise<AccountsSyncOutcome>;
  stop(): Promise<void>;
}

const RESTART_HINT =
  'write the plugin file again (`fleetvisor broker mosquitto-dynsec --out FILE`) and restart Mosquitto ' +
  'after each account change (README, "Connecting devices")';

export function startAccountsSync(
  setup: AppSetup,
  parts: {
    readonly mqtt: MqttSettings;
    readonly accounts: BrokerAccounts;
    readonly pollMs?: number;
    readonly retryMs?: number;
  },
): AccountsSync {
  const { log, options } = setup;
  const { mqtt, accounts: raw } = parts;
  const dataDir = options.dataDir;
  const owner = instanceIdOf(dataDir);
  const say = createSayer(log, mqtt.url);
  let stopped = mqtt.username === undefined; // an anonymous host may not manage accounts
  let running: Promise<AccountsSyncOutcome> | undefined;
  let retry: NodeJS.Timeout | undefined;

  const pass = async (): Promise<AccountsSyncOutcome> => {
    const r = await syncDynsecAccounts(mqtt, {
      accounts: raw,
      dataDir,
      owner,
      clientId: `fleetvisor-${owner}-accounts-sync`,
    });
    if (r.ok) {
      if (!handoverOpen(dataDir)) openHandover(dataDir);
      say.live(r.value);
    } else if (r.error.code === 'unreachable') {
      say.unreachable(r.error.message);
      retry ??= setTimeout(() => {
        retry = undefined;
        kick();
      }, parts.retryMs ?? 10_000);
    } else {
      closeHandover(dataDir); // no secret kept in clear for a broker that will not take it
      say.fileOnly(r.error.message, raw.devices().length);
    }
    return r;
  };

  // One pass at a time; the changes made while one runs are all taken by one more after it.
  let queued: Promise<AccountsSyncOutcome> | undefined;
  const run = (): Promise<AccountsSyncOutcome> => {
    if (stopped) return Promise.resolve(off());
    if (running) {
      queued ??= running.then(() => {
        queued = undefined;
        return run();
      });
      return queued;
    }
    running = pass()
      .catch((error: unknown): AccountsSyncOutcome => {
        log.error('broker accounts: the pass failed', { error });
        return { ok: false, error: { code: 'unreachable', message: String(error) } };
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const kick = () => {
    void run();
  };

  // By the count of changes: a pass's own re-read of the file must not hide a change from the poll.
  let seen = raw.changes();
  const poll = stopped
    ? undefined
    : setInterval(() => {
        raw.refresh();
        if (raw.changes() === seen) return;
        seen = raw.changes();
        kick();
      }, parts.pollMs ?? 1000);
  poll?.unref();
  if (!stopped) kick();

  const changed =
    <A extends unknown[], R>(f: (...args: A) => R) =>
    (...args: A): R => {
      const r = f(...args);
      if (!stopped) kick();
      return r;
    };
  return {
    accounts: { ...raw, issueDevice: changed(raw.issueDevice), revokeDevice: changed(raw.revokeDevice) },
    syncNow: run,
    async stop() {
      stopped = true;
      clearInterval(poll);
      clearTimeout(retry);
      await queued;
      await running;
    },
  };
}

/** The log lines of the passes, each state said once (until another was said), each missing set once. */
function createSayer(log: Logger, url: string) {
  let said: 'live' | 'unreachable' | 'fileOnly' | undefined;
  let missingSaid = '';
  return {
    live(report: DynsecSyncReport) {
      if (said !== 'live')
        log.info(
          'broker accounts kept on Mosquitto live (dynamic security plugin): no restart after a change',
          {
            url,
          },
        );
      said = 'live';
      for (const id of report.made) log.info('broker account made on Mosquitto', { device: id });
      for (const id of report.removed)
        log.info('broker account deleted on Mosquitto (session ended)', { device: id });
      for (const { id, error } of report.refused)
        log.warn(`Mosquitto refused the account of ${id}: ${error}`);
      for (const id of report.conflicts)
        log.warn(`broker account ${id} not made on Mosquitto: a client of another role has that name there`);
      const missing = report.missing.join(', ');
      if (missing !== '' && missing !== missingSaid)
        log.warn(
          `device accounts not on Mosquitto, their secrets unknown here: ${report.missing.slice(0, 10).join(', ')}${report.missing.length > 10 ? ', …' : ''}; rotate them (\`fleetvisor broker device rotate ID\`) or ${RESTART_HINT.replace(' after each account change', '')}`,
        );
      missingSaid = missing;
    },
    unreachable(message: string) {
      if (said !== 'unreachable') log.info(`broker account changes wait for the broker: ${message}`);
      said = 'unreachable';
    },
    /** Warned when there are device accounts (changes the broker misses), else only noted. */
    fileOnly(message: string, devices: number) {
      if (said !== 'fileOnly')
        (devices > 0 ? log.warn : log.info)(
          `the host cannot change accounts on ${url}: ${message}. Account changes are kept in the data folder's accounts; ${RESTART_HINT}`,
        );
      said = 'fileOnly';
    },
  };
}

function off(): AccountsSyncOutcome {
  return { ok: false, error: { code: 'off', message: 'the broker accounts are not kept on the broker' } };
}
