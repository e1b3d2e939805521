/**
 * The broker devices connect to: the external one given as `mqtt`, or else the embedded broker
 * as the root's first child (permanent, restarted on the same port), asking for the accounts kept
 * in the data folder. With an external broker the same accounts are kept on it live when it is a
 * Mosquitto with the dynamic security plugin (src/host/app/broker-accounts-sync.ts).
 *
 * @example
 * const broker = await startAppBroker(setup, root);
 * broker.mqtt.url;  // 'mqtt://127.0.0.1:1883'
 * broker.current(); // the embedded broker running now (a new one after a restart); undefined if external
 */
import type { BrokerAccounts } from '../../transports/broker-accounts.js';
import { openBrokerAccounts } from '../../transports/broker-accounts.js';
import { closeHandover } from '../../transports/broker-accounts-handover.js';
import type { EmbeddedBroker } from '../../transports/embedded-broker.js';
import type { MqttSettings } from '../../transports/links.js';
import { brokerChild } from '../broker-process.js';
import type { AccountsSync } from './broker-accounts-sync.js';
import { startAccountsSync } from './broker-accounts-sync.js';
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
  current(): EmbeddedBroker | undefined;
}

/** Throws what the broker's start throws (a listen error, bad TLS files). */
export async function startAppBroker(setup: AppSetup, root: AppRoot): Promise<AppBroker> {
  const { runtime, options, log } = setup;
  let broker: EmbeddedBroker | undefined;
  let brokerAccounts: BrokerAccounts | undefined;
  let mqtt = options.mqtt;
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
  if (brokerAccounts)
    return {
      mqtt,
      accounts: brokerAccounts,
      deviceAccounts: brokerAccounts,
      accountsSync: undefined,
      current: () => broker,
    };
  const accountsSync = startAccountsSync(setup, { mqtt, accounts: openBrokerAccounts(options.dataDir) });
  setup.stops.push(() => accountsSync.stop());
  return {
    mqtt,
    accounts: undefined,
    deviceAccounts: accountsSync.accounts,
    accountsSync,
    current: () => broker,
  };
}
