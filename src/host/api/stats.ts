/**
 * The system figures (contract `stats`): devices online and failed, processes under the root,
 * the ingest rate over the last 10 s, restarts, command round-trip percentiles, queues, broker
 * (with what it refused, in total and per client), data lost on the way to the store by cause, duplicates ignored.
 *
 * @example
 * const stats = createStats(app, live);
 * stats(); // { devices: { total, online, failed }, ingestRate, commandLatencyMs: { p50, … }, … }
 */

import type { App } from '../app.js';
import type { SystemStats } from '../contract.js';
import type { LiveFigures } from './live.js';
import { countProcesses } from './tree.js';

const RATE_WINDOW_MS = 10_000;

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
}

/** Clients listed one by one in the figures (the broker keeps more; the totals count them all). */
const REFUSED_CLIENTS_SHOWN = 20;

function refusedByBroker(app: App): SystemStats['broker']['refused'] {
  const r = app.broker?.refusals();
  if (!r) return { connect: 0, publish: 0, subscribe: 0 };
  return {
    connect: r.connect,
    publish: r.publish,
    subscribe: r.subscribe,
    clients: r.clients.slice(0, REFUSED_CLIENTS_SHOWN).map((c) => ({ ...c })),
  };
}

function dataLossOf(lost: Readonly<Record<string, number>>): SystemStats['dataLoss'] {
  let total = 0;
  for (const cause in lost) total += lost[cause] ?? 0;
  return { total, byCause: { ...lost } };
}

export function createStats(app: App, live: LiveFigures): () => SystemStats {
  const { fleet, links } = app;
  // The activity total at each call, so the rate covers the last 10 s of calls.
  const received: { at: number; total: number }[] = [];
  return () => {
    const now = app.runtime.clock.wallNow();
    const total = live.activityTotal;
    received.push({ at: now, total });
    while (received.length > 2 && now - received[0]!.at > RATE_WINDOW_MS) received.shift();
    const first = received[0]!;
    const span = (now - first.at) / 1000;
    const list = fleet.list();
    const sorted = [...live.latencies].sort((a, b) => a - b);
    const mqtt = links.mqtt?.stats();
    const storeStats = app.store.stats();
    return {
      at: now,
      devices: {
        total: list.length,
        online: list.filter((d) => d.link.up).length,
        failed: list.filter((d) => d.health === 'failed').length,
      },
      processes: countProcesses(app.supervisor),
      ingestRate: span > 0 ? (total - first.total) / span : 0,
      restarts: live.restarts,
      commandLatencyMs: {
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
      },
      queues: {
        commandsOpen: fleet.commands.open().length,
        mqttOutbox: mqtt?.outboxLength ?? 0,
        mqttInflight: mqtt?.inflight ?? 0,
      },
      broker: {
        url: app.brokerUrl ?? null,
        connected: mqtt?.connected ?? false,
        embedded: app.broker !== undefined,
        refused: refusedByBroker(app),
      },
      dataLoss: dataLossOf(mqtt?.lost ?? {}),
      duplicatesIgnored: storeStats.telemetry.duplicates + storeStats.events.duplicates,
      heapUsedBytes: process.memoryUsage().heapUsed,
    };
  };
}
