/**
 * A device's `event` message is logged at most once per (device, boot, seq) (docs/protocol.md §8,
 * issue 12 §5), end to end over MQTT: a real broker (the embedded aedes always, Mosquitto at
 * FLEETVISOR_TEST_MQTT_URL when set), the host's links and fleet on a real SQLite file. The hub's
 * window of 1,024 seqs cannot tell a duplicate 2,000 messages late, nor one after the host
 * restarted; the store's key does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventMessage, TelemetryMessage } from '../../src/transports/protocol.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import type { LinksHost } from '../rig/links-rig.js';
import {
  eachBroker,
  onCleanup,
  rawClient,
  runCleanups,
  simDevice,
  startLinksHost,
} from '../rig/links-rig.js';
import { tempDir } from '../store/helpers.js';
import { uniqueId, waitFor } from './helpers.js';

afterEach(runCleanups);

type App = LinksHost;

/** The host on `file`: store, fleet and links, as the app composes them; `add` devices on first start. */
const startHost = (url: string, file: string, add: readonly string[] = []): Promise<App> =>
  startLinksHost(url, { file, ids: add });

// Hello and status only: the test sends the device's messages itself, as a device resending would.
const sim = (url: string, id: string) => simDevice(url, id, { telemetryIntervalMs: 3_600_000 });

const state = (app: App, id: string) => app.fleet.device(id)?.state;
const received = (app: App, id: string) => app.links.hub?.stats(id)?.received ?? 0;

/** Counts the `event` messages of `id` the hub accepts (past its window) from now on. */
function acceptedEvents(app: App, id: string): { count: number } {
  const seen = { count: 0 };
  const stop = app.links.hub!.observe((deviceId, m) => {
    if (deviceId === id && m.type === 'event') seen.count++;
  });
  onCleanup(stop);
  return seen;
}

/** The device's stored events of `kind`, once everything the hub handed to the log is committed. */
async function logged(app: App, id: string, kind: string): Promise<number> {
  await app.links.hub!.flush();
  const page = await app.store.queryEvents({ deviceId: id, kind, limit: 100 });
  return page.items.length;
}

const brokers = eachBroker();

describe.each(brokers)('device events at most once over MQTT ($name)', ({ url: brokerUrl }) => {
  it('an event sent again 2,000 messages later, and again after the host restarted, is one row', async () => {
    const url = brokerUrl();
    const id = uniqueId('evonce');
    const tmp = tempDir();
    onCleanup(tmp.cleanup);
    let app = await startHost(url, tmp.file, [id]);
    const d = await sim(url, id);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');

    const raw = await rawClient(url);
    const boot = d.device.boot;
    const first = 500_000; // far from the seqs the simulator itself would use in this boot
    const overheat: EventMessage = {
      v: 1,
      type: 'event',
      boot,
      seq: first,
      ts: Date.now(),
      name: 'overheat',
      severity: 'warning',
      data: { celsius: 81.5 },
    };
    const publish = (channel: 'event' | 'telemetry', m: EventMessage | TelemetryMessage) =>
      raw.publishAsync(`fleetvisor/v1/${id}/${channel}`, Buffer.from(encodeMessage(m)), { qos: 1 });

    const accepted = acceptedEvents(app, id);
    await publish('event', overheat);
    await waitFor(() => accepted.count === 1, 5000, 'the event accepted');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);

    // 2,000 other messages of the same boot: the hub's window (1,024 seqs) moves past the event.
    // In bursts of 100, each received before the next: a broker may drop what queues past its
    // limit for a slow subscriber (Mosquitto's max_queued_messages), which is not what this tests.
    const base = received(app, id);
    for (let k = 1; k <= 2_000; k += 100) {
      const burst: Promise<unknown>[] = [];
      for (let j = k; j < k + 100; j++)
        burst.push(
          publish('telemetry', {
            v: 1,
            type: 'telemetry',
            boot,
            seq: first + j,
            ts: Date.now(),
            values: { j },
          }),
        );
      await Promise.all(burst);
      await waitFor(() => received(app, id) >= base + k + 99, 5000, `messages ${k}…${k + 99} received`);
    }

    await publish('event', overheat); // the same event again, 2,000 behind the newest seq
    await waitFor(() => accepted.count === 2, 5000, 'the late duplicate accepted by the hub');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);
    expect(app.links.hub!.stats(id)!.duplicates).toBe(0); // the window could not tell: the store did
    expect(app.store.stats().events.duplicates).toBe(1);

    // The host restarts on the same data: a new hub with an empty window, the same store file.
    await app.stop();
    app = await startHost(url, tmp.file);
    await waitFor(() => app.links.hub!.device(id)?.online === true, 5000, 'online after the restart');
    const afterRestart = acceptedEvents(app, id);
    await publish('event', overheat); // a device resending after reconnect, or a QoS 1 redelivery
    await waitFor(() => afterRestart.count === 1, 5000, 'the event accepted after the restart');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);
    expect(app.store.stats().events.duplicates).toBe(1);

    // A new event of the same boot is still logged: only the duplicates are skipped.
    await publish('event', { ...overheat, seq: first + 2_001 });
    await waitFor(() => afterRestart.count === 2, 5000, 'a new event accepted');
    expect(await logged(app, id, 'device.event.overheat')).toBe(2);
  });
});
