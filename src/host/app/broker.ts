/**
 * The broker devices connect to: the external one given as `mqtt`, or else the embedded broker
 * as the root's first child (permanent, restarted on the same port), asking for the accounts kept
 * in the data folder. With an external broker the same accounts are kept on it live when it is a
 * Mosquitto with the dynamic security plugin (src/host/app/broker-accounts-sync.ts). Either way, a
 * device whose account is revoked while the app runs is shown disconnected at once and its
 * messages are not taken until its account is issued again (src/host/app/revoked-devices.ts).
 *
 * @example
 * const broker = await startAppBroker(setup, root);
 * broker.mqtt.url;  // 'mqtt://127.0.0.1:1883'
 * broker.current(); // the embedded broker running now (a new one after a restart); undefined if external
 * broker.revoked.attach(fleet, links); // then `owns: (id) => broker.revoked.admits(id)` for the links
 */
import type { BrokerAccounts } from '../../transports/broker-accounts.js';
import { openBrokerAccounts } from '../../transports/broker-accounts.js';
import { closeHandover } from '../../transports/broker-accounts-handover.js';
import type { EmbeddedBroker } from '../../transports/embedded-broker.js';
import type { MqttSettings } from '../../transports/links.js';
import { brokerChild } from '../broker-process.js';
import type { AccountsSync } from './broker-accounts-sync.js';
import { startAccountsSync } from './broker-accounts-sync.js';
import type { RevokedDevices } from './revoked-devices.js';
import { watchRevokedDevices } from './revoked-devices.js';
import type { AppRoot } from './root.js';
import type { AppSetup } from './setup.js';

export interface AppBroker {
  /** How the host's own clients reach it (the host's account with the embedded broker). */
  readonly mqtt: MqttSettings;
  /** The embedded broker's accounts; undefined with an external broker. */
  readonly accounts: BrokerAccounts | undefined;
  /**
   * The data folder's accounts as the app changes them (a removed device's revoked): the embedded
   * broker's, or those kept on an external Mosquitto by {@link AppBroker.accountsSync}.
   */
  readonly deviceAccounts: BrokerAccounts;
  /** With an external broker: its accounts kept live (a no-op where the broker does not take them). */
  readonly accountsSync: AccountsSync | undefined;
  /** Devices revoked while the app runs: shown disconnected, their messages not taken. */
  readonly revoked: RevokedDevices;
  current(): EmbeddedBroker | undefined;
}

/** Throws what the broker's start throws (a listen error, bad TLS files). */
export async function startAppBroker(setup: AppSetup, root: AppRoot): Promise<AppBroker> {
  const { runtime, options, log } = setup;
  let broker: EmbeddedBroker | undefined;
  let brokerAccounts: BrokerAccounts | undefined;
  let mqtt = options.mqtt;
  let revoked: RevokedDevices | undefined;
  if (!mqtt) {
    brokerAccounts = openBrokerAccounts(options.dataDir);
    closeHandover(options.dataDir); // this broker reads the accounts file: no secret to hand over
    await root.startChild(
      brokerChild(
        runtime,
        {
          host: options.broker?.host ?? '127.0.0.1',
          port: options.broker?.port ?? 1883,
          logger: log,
          auth: brokerAccounts,
          // A revoked device is marked down for that reason before its session ends.
          onAccountsChanged: () => revoked?.check(),
          ...(options.broker?.tls ? { tls: options.broker.tls } : {}),
        },
        (started) => {
          broker = started;
        },
      ),
    );
    const first = broker as EmbeddedBroker | undefined;
    if (!first) throw new Error('the embedded broker did not start');
    mqtt = { url: first.url, ...brokerAccounts.host };
    log.info('embedded MQTT broker: devices connect to it', { url: first.url });
    if (first.portWasTaken)
      log.info(
        `to use the broker that runs on port ${options.broker?.port ?? 1883}: --mqtt-url mqtt://127.0.0.1:${options.broker?.port ?? 1883}`,
      );
    if ((options.broker?.host ?? '127.0.0.1') === '127.0.0.1')
      log.info(
        'the embedded broker accepts devices on this machine only; --broker-host 0.0.0.0 opens it to the LAN',
      );
  }
  const accountsSync = brokerAccounts
    ? undefined
    : startAccountsSync(setup, { mqtt, accounts: openBrokerAccounts(options.dataDir) });
  if (accountsSync) setup.stops.push(() => accountsSync.stop());
  const accounts = brokerAccounts ?? (accountsSync as AccountsSync).accounts;
  const watcher = watchRevokedDevices(setup, accounts);
  revoked = watcher;
  setup.stops.push(async () => watcher.stop());
  // A device removed from the fleet (API, config) is revoked in this process: held back at once.
  const seenAtOnce =
    <A extends unknown[], R>(f: (...args: A) => R) =>
    (...args: A): R => {
      const r = f(...args);
      watcher.check();
      return r;
    };
  return {
    mqtt,
    accounts: brokerAccounts,
    deviceAccounts: {
      ...accounts,
      issueDevice: seenAtOnce(accounts.issueDevice),
      revokeDevice: seenAtOnce(accounts.revokeDevice),
    },
    accountsSync,
    revoked: watcher,
    current: () => broker,
  };
}
