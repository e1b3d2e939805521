/**
 * `npm run sim -- --no-fw-binary`: the simulated serial device lists no `fw.binary`, so a real
 * host updates it through JSON chunk frames (docs/protocol.md §7.1). The CLI runs as a real
 * process on a socat pty pair; the host's serial link, the fleet on a real SQLite file and the
 * firmware update job run here against the host port it prints.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createFirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { parseCliArgs, USAGE } from '../../src/sim/cli.js';
import { socatAvailable } from '../../src/sim/pty.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { createLinks } from '../../src/transports/links.js';
import { registerCleanups, uniqueId, waitFor } from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

describe('the sim CLI: --no-fw-binary', () => {
  it('parses: devices list fw.binary unless --no-fw-binary; the help says so', () => {
    expect(parseCliArgs(['--serial', '1'])).toMatchObject({ kind: 'run', options: { fwBinary: true } });
    expect(parseCliArgs(['--serial', '1', '--no-fw-binary'])).toMatchObject({
      kind: 'run',
      options: { serial: 1, fwBinary: false },
    });
    expect(parseCliArgs(['--no-fw-binary=1']).kind).toBe('error');
    expect(USAGE).toMatch(/--no-fw-binary +devices do not list fw\.binary/);
  });

  it.skipIf(!hasSocat)(
    `a device started with it is updated by a real host through JSON chunks${hasSocat ? '' : ' (skipped: no socat)'}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fv-sim-cli-json-'));
      cleanup(() => rmSync(dir, { recursive: true, force: true }));
      const prefix = uniqueId('nb');
      const id = `${prefix}-s01`;
      const child: ChildProcess = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/sim/cli.ts', '--serial', '1', '--mqtt', '0', '--no-fw-binary'].concat([
          '--pty-dir',
          join(dir, 'pty'),
          '--prefix',
          prefix,
        ]),
        { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Asked to stop first (it closes its socat pair), killed only if it does not: a SIGKILL alone
      // would leave its socat running.
      cleanup(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGINT');
        const t = new Promise((r) => setTimeout(r, 5000));
        if ((await Promise.race([exit.then(() => 'exited'), t])) !== 'exited') child.kill('SIGKILL');
      });
      await waitFor(() => out.includes('Ctrl-C to stop'), 20_000, 'the CLI to start');
      const line = out.match(/^serial {2}(\S+) {2}host port: (\S+) {2}\(no fw\.binary: JSON chunks\)$/m);
      expect(line?.[1]).toBe(id);
      const hostPort = line![2]!;

      const store = await openSqliteStore({ file: join(dir, 'fleet.sqlite'), telemetryFlushMs: 20 });
      const runtime = createRuntime({});
      const links = createLinks({
        runtime,
        store,
        serial: { ports: [hostPort], pollMs: 100, link: { heartbeatMs: 1000 } },
      });
      const fleet = createFleet({
        runtime,
        store,
        kinds: [genericDevice],
        carrier: links.carrier,
        reconcileIntervalMs: 0,
      });
      await fleet.start();
      const sent = { chunks: 0 };
      const updates = createFirmwareUpdates({
        runtime,
        hub: () => {
          const hub = links.hub;
          if (!hub) return undefined;
          return {
            device: (deviceId) => hub.device(deviceId),
            send: (deviceId, m) => {
              if (m.type === 'fw.chunk') sent.chunks++;
              return hub.send(deviceId, m);
            },
          };
        },
        defaults: { ackTimeoutMs: 1000, soakMs: 300, rebootTimeoutMs: 10_000 },
      });
      await links.attach(fleet, {
        adopt: 'auto',
        onFirmwareAck: (deviceId, ack) => updates.ack(deviceId, ack),
        onDeviceHello: (deviceId, hello) => updates.hello(deviceId, hello),
      });
      cleanup(async () => {
        await links.stop();
        await fleet.stop();
        await store.close();
        runtime.dispose();
      });
      await waitFor(() => links.hub?.device(id)?.online === true, 10_000, `${id} online`);
      const caps = links.hub?.device(id)?.hello?.capabilities ?? [];
      expect(caps).toContain('fw');
      expect(caps).not.toContain('fw.binary');
      // The link frames fw.chunk as JSON for this device.
      expect(links.serial?.linkFor(id)?.stats().binaryChunks).toBe(false);

      const image = randomBytes(40 * 1024 + 7);
      const started = updates.start(id, { image, version: '4.2.0' });
      if (!started.ok) throw new Error(started.error.message);
      const final = await started.value.done;
      expect(final).toMatchObject({ step: 'succeeded', offset: image.length, error: undefined });
      expect(sent.chunks).toBeGreaterThanOrEqual(Math.ceil(image.length / 4096));
      // The hello of the reboot into the new image (confirmed since: the job ended succeeded).
      expect(links.hub?.device(id)?.hello?.firmware.version).toBe('4.2.0');
      expect(links.serial?.linkFor(id)?.stats().binaryChunks).toBe(false);
      expect(links.serial?.linkFor(id)?.stats().errors).toEqual({});

      child.kill('SIGINT');
      expect(await exit).toBe(0);
    },
    60_000,
  );
});
