/**
 * The flags of `fleetvisor` read group by group (src/host/command-line.ts): where they come from
 * and which wins, then each group's values and the message naming a bad flag.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flags } from '../../src/host/command-line.js';
import {
  brokerOf,
  fleetFlagsOf,
  logLevelOf,
  readFlags,
  retentionOf,
  serialPortsOf,
  storeOptionsOf,
  UsageError,
  uiServerOf,
} from '../../src/host/command-line.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fv-command-line-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The flags of `argv` on an empty data folder (no settings.json) and no environment. */
function flags(...argv: string[]): Flags {
  const read = readFlags([...argv, '--data-dir', dir], {});
  if (read === undefined) throw new Error('--help');
  return read.values;
}

describe('readFlags', () => {
  it('answers undefined for --help', () => {
    expect(readFlags(['--help'], {})).toBeUndefined();
    expect(readFlags(['-h'], {})).toBeUndefined();
  });

  it('lets the command line win over the environment, --config and settings.json, in that order', () => {
    const data = mkdtempSync(join(dir, 'data-'));
    writeFileSync(join(data, 'settings.json'), JSON.stringify({ serial: 'auto', adopt: 'auto' }));
    const config = join(data, 'config.json');
    writeFileSync(config, JSON.stringify({ adopt: 'manual', 'mqtt-url': 'mqtt://config' }));
    const env = { FLEETVISOR_MQTT_URL: 'mqtt://env' };

    const read = readFlags(['--data-dir', data, '--config', config, '--port', '8080'], env);
    expect(read?.values).toMatchObject({
      serial: 'auto',
      adopt: 'manual',
      'mqtt-url': 'mqtt://env',
      port: '8080',
    });
    expect(read?.saved).toEqual({ serial: 'auto', adopt: 'auto' });
    expect(read?.settingsFile).toBe(join(data, 'settings.json'));
    expect(read?.overridden).toContain('adopt');
    expect(read?.overridden).not.toContain('serial');
  });

  it('names the source of a bad option', () => {
    expect(() => readFlags(['--bogus', '--data-dir', dir], {})).toThrow(UsageError);
    expect(() => readFlags(['--config'], {})).toThrow('--config needs a file');
    const config = join(dir, 'help.json');
    writeFileSync(config, JSON.stringify({ help: true }));
    expect(() => readFlags(['--config', config], {})).toThrow(
      `--config ${config}: 'help' cannot be set in a file`,
    );
  });
});

describe('the groups', () => {
  it('log level: info by default, one of four', () => {
    expect(logLevelOf(flags())).toBe('info');
    expect(logLevelOf(flags('--log-level', 'debug'))).toBe('debug');
    expect(() => logLevelOf(flags('--log-level', 'loud'))).toThrow(
      "--log-level must be debug, info, warn or error, not 'loud'",
    );
  });

  it('fleet: adoption, firmware drift and the demo (--no-demo wins over --demo-devices)', () => {
    expect(fleetFlagsOf(flags())).toEqual({ adopt: undefined, firmwareDrift: undefined, demo: undefined });
    expect(
      fleetFlagsOf(flags('--adopt', 'manual', '--firmware-drift', 'update', '--demo-devices', '3')),
    ).toEqual({
      adopt: 'manual',
      firmwareDrift: 'update',
      demo: { mqtt: 3 },
    });
    expect(fleetFlagsOf(flags('--no-demo', '--demo-devices', '3')).demo).toBe(false);
    expect(() => fleetFlagsOf(flags('--adopt', 'maybe'))).toThrow(
      "--adopt must be auto or manual, not 'maybe'",
    );
    expect(() => fleetFlagsOf(flags('--demo-devices', '2.5'))).toThrow(
      "--demo-devices must be a number 0…10000, not '2.5'",
    );
  });

  it('retention: telemetry defaults to the general retention', () => {
    expect(retentionOf(flags())).toBeUndefined();
    expect(retentionOf(flags('--retention-days', '90'))).toEqual({ telemetry: 90, events: 90, commands: 90 });
    expect(retentionOf(flags('--telemetry-retention-days', '7'))).toEqual({ telemetry: 7 });
    expect(() => retentionOf(flags('--telemetry-retention-days', '0'))).toThrow(
      "--telemetry-retention-days must be a number of days over 0 (at most 36500), not '0'",
    );
  });

  it('broker: the embedded one by default, with its TLS listener on the same host', () => {
    expect(brokerOf(flags(), {})).toEqual({ mqtt: undefined, broker: {} });
    expect(
      brokerOf(
        flags(
          '--broker-host',
          '0.0.0.0',
          '--broker-port',
          '1884',
          '--broker-tls-cert',
          'c',
          '--broker-tls-key',
          'k',
        ),
        {},
      ).broker,
    ).toEqual({ host: '0.0.0.0', port: 1884, tls: { certFile: 'c', keyFile: 'k', host: '0.0.0.0' } });
    expect(() => brokerOf(flags('--broker-tls-cert', 'c'), {})).toThrow(
      '--broker-tls-cert and --broker-tls-key go together',
    );
  });

  it('broker: an external one takes its password from the environment, and no embedded TLS', () => {
    expect(
      brokerOf(flags('--mqtt-url', 'mqtts://b.lan', '--mqtt-username', 'u'), {
        FLEETVISOR_MQTT_PASSWORD: 'p',
      }).mqtt,
    ).toEqual({ url: 'mqtts://b.lan', username: 'u', password: 'p' });
    expect(() => brokerOf(flags('--mqtt-username', 'u'), {})).toThrow(
      /--mqtt-username and the TLS files need --mqtt-url/,
    );
    // An empty password is none; one without a user name is refused at start (mqtt.js would close
    // every connection without a word: the app said only "could not connect", found on a trial).
    expect(brokerOf(flags('--mqtt-url', 'mqtt://b.lan'), { FLEETVISOR_MQTT_PASSWORD: '' }).mqtt).toEqual({
      url: 'mqtt://b.lan',
    });
    expect(() => brokerOf(flags('--mqtt-url', 'mqtt://b.lan'), { FLEETVISOR_MQTT_PASSWORD: 'p' })).toThrow(
      'FLEETVISOR_MQTT_PASSWORD is set but --mqtt-username is not: MQTT sends a password only with a user name',
    );
    expect(() => brokerOf(flags('--mqtt-url', 'http://b'), {})).toThrow(
      "--mqtt-url must start with mqtt://, mqtts://, ws:// or wss://, not 'http://b'",
    );
    expect(() =>
      brokerOf(flags('--mqtt-url', 'mqtt://b', '--broker-tls-cert', 'c', '--broker-tls-key', 'k'), {}),
    ).toThrow('--broker-tls-cert is for the embedded broker; it cannot go with --mqtt-url');
  });

  it('serial: "auto" or a trimmed list', () => {
    expect(serialPortsOf(flags())).toBeUndefined();
    expect(serialPortsOf(flags('--serial', 'auto'))).toBe('auto');
    expect(serialPortsOf(flags('--serial', ' /dev/a, /dev/b ,'))).toEqual(['/dev/a', '/dev/b']);
    expect(() => serialPortsOf(flags('--serial', ' , '))).toThrow('--serial needs ports or "auto"');
  });

  it('store and cluster: a cluster needs PostgreSQL and a shared broker', () => {
    expect(storeOptionsOf(flags())).toEqual({});
    const pg = 'postgres://fv@db:5432/fleet';
    expect(storeOptionsOf(flags('--store', pg))).toEqual({ storeUrl: pg });
    expect(
      storeOptionsOf(flags('--store', pg, '--cluster', '--mqtt-url', 'mqtt://b', '--instance', 'east-1')),
    ).toEqual({ storeUrl: pg, cluster: { instanceId: 'east-1' } });
    expect(() => storeOptionsOf(flags('--cluster'))).toThrow(/^--cluster needs --store/);
    expect(() => storeOptionsOf(flags('--store', pg, '--cluster'))).toThrow(/^--cluster needs --mqtt-url/);
    expect(() => storeOptionsOf(flags('--instance', 'east-1'))).toThrow('--instance goes with --cluster');
    // The Primary Host id edge nodes wait for (spBv1.0/STATE/<id>), the leader's whichever it is.
    expect(
      storeOptionsOf(
        flags('--store', pg, '--cluster', '--mqtt-url', 'mqtt://b', '--sparkplug-host-id', 'plant-scada'),
      ),
    ).toEqual({ storeUrl: pg, cluster: { sparkplugHostId: 'plant-scada' } });
    expect(() => storeOptionsOf(flags('--sparkplug-host-id', 'scada'))).toThrow(
      /^--sparkplug-host-id goes with --cluster/,
    );
    expect(() =>
      storeOptionsOf(
        flags('--store', pg, '--cluster', '--mqtt-url', 'mqtt://b', '--sparkplug-host-id', 'a/#'),
      ),
    ).toThrow(/^--sparkplug-host-id must be .* not 'a\/#'$/);
  });

  it('UI server: port 0 (the last one when free) unless told', () => {
    expect(uiServerOf(flags())).toEqual({ port: 0, host: undefined });
    expect(uiServerOf(flags('--port', '8080', '--host', '0.0.0.0'))).toEqual({ port: 8080, host: '0.0.0.0' });
    expect(() => uiServerOf(flags('--port', '70000'))).toThrow("--port must be a port number, not '70000'");
  });
});
