/**
 * kill -9 durability: a child process writes snapshots (transitions), telemetry, events and
 * commands, printing a line after each acknowledged write, and is killed with SIGKILL at a random
 * moment — sometimes while it is still opening or migrating. After every kill the database is
 * reopened: every acknowledged write must be there and `PRAGMA integrity_check` must say ok.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { rawAll, tempDir } from './helpers.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'store-writer.ts');
const ITERATIONS = 20;
const POINTS_PER_BATCH = 100;

interface Acked {
  ready: boolean;
  /** deviceId → highest n acknowledged. */
  snapshots: Map<string, number>;
  /** lane → highest batch acknowledged (batches are sequential per lane). */
  telemetry: Map<number, number>;
  /** seq → the n and i written at that seq. */
  events: Map<number, { n: number; i: number }>;
  commands: Set<string>;
  completed: Set<string>;
  lines: number;
}

/** Seeded, so a failure replays: xorshift32. */
function createRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function parse(lines: string[]): Acked {
  const acked: Acked = {
    ready: false,
    snapshots: new Map(),
    telemetry: new Map(),
    events: new Map(),
    commands: new Set(),
    completed: new Set(),
    lines: lines.length,
  };
  for (const line of lines) {
    const [type, ...rest] = line.split(' ');
    if (type === 'ready') acked.ready = true;
    else if (type === 'snap') acked.snapshots.set(rest[0]!, Number(rest[2]));
    else if (type === 'tel') acked.telemetry.set(Number(rest[1]), Number(rest[2]));
    else if (type === 'evt') {
      const n = Number(rest[1]);
      rest[2]!.split(',').forEach((seq, i) => {
        acked.events.set(Number(seq), { n, i });
      });
    } else if (type === 'cmd') acked.commands.add(rest[0]!);
    else if (type === 'cmdok') acked.completed.add(rest[0]!);
    else throw new Error(`unexpected line from the writer: ${line}`);
  }
  return acked;
}

/** Runs the writer until SIGKILL after `killAfterMs` (counted from 'ready' when `afterReady`). */
function runAndKill(file: string, tag: number, killAfterMs: number, afterReady: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, file, String(tag)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const kill = () => child.kill('SIGKILL');
    if (!afterReady) killTimer = setTimeout(kill, killAfterMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (afterReady && killTimer === undefined && (out + chunk).includes('ready\n'))
        killTimer = setTimeout(kill, killAfterMs);
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    const guard = setTimeout(kill, 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited on its own (${code ?? signal}): ${err}`));
      // Only complete lines: a line is printed after its write was acknowledged.
      else resolve(out.split('\n').slice(0, -1));
    });
  });
}

async function verify(store: Store, tag: number, acked: Acked): Promise<void> {
  const snapshots = new Map<string, { tag: number; n: number }>();
  for (const loaded of await store.loadSnapshots({ knownKinds: ['generic'] })) {
    expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
    if (loaded.ok) snapshots.set(loaded.deviceId, loaded.value.snapshot as { tag: number; n: number });
  }
  for (const [deviceId, n] of acked.snapshots) {
    const stored = snapshots.get(deviceId);
    // The stored one is the acknowledged one or a later write (committed, not yet acknowledged).
    expect(stored?.tag, `snapshot of ${deviceId}`).toBe(tag);
    expect(stored!.n, `snapshot of ${deviceId}`).toBeGreaterThanOrEqual(n);
  }

  for (const [lane, lastBatch] of acked.telemetry) {
    // receivedAt = batch number, so one bucket per batch: each must hold all its points.
    const buckets = await store.queryTelemetry('tel', `m-${tag}-${lane}`, 1, lastBatch + 1, lastBatch);
    const counts = new Map(buckets.map((b) => [b.start, b]));
    for (let batch = 1; batch <= lastBatch; batch++) {
      const bucket = counts.get(batch);
      expect(bucket?.count, `telemetry lane ${lane} batch ${batch}`).toBe(POINTS_PER_BATCH);
      expect(bucket?.min).toBe(batch * 1000);
      expect(bucket?.max).toBe(batch * 1000 + POINTS_PER_BATCH - 1);
    }
  }

  if (acked.events.size > 0) {
    const page = await store.queryEvents({ kind: `t-${tag}`, limit: 10_000 });
    const stored = new Map<number, unknown>();
    for (const item of page.items) if (item.ok) stored.set(item.value.seq, item.value.data);
    expect(page.items.every((item) => item.ok)).toBe(true);
    for (const [seq, { n, i }] of acked.events)
      expect(stored.get(seq), `event #${seq}`).toEqual({ tag, n, i });
  }

  if (acked.commands.size > 0) {
    const page = await store.queryCommands({ deviceId: `cmd-dev-${tag}`, limit: 10_000 });
    const stored = new Map<string, string>();
    for (const item of page.items) if (item.ok) stored.set(item.value.commandId, item.value.status);
    for (const id of acked.commands) expect(stored.has(id), `command ${id}`).toBe(true);
    for (const id of acked.completed) expect(stored.get(id), `command ${id}`).toBe('succeeded');
  }
}

describe('kill -9 durability', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it(`keeps every acknowledged write across ${ITERATIONS} SIGKILLs at random moments`, async () => {
    const seed = Number(process.env.STORE_KILL9_SEED ?? Date.now() % 100_000);
    const random = createRandom(seed);
    let totalLines = 0;
    let killedBeforeReady = 0;
    for (let tag = 1; tag <= ITERATIONS; tag++) {
      // One kill in five lands while the child is still starting, opening or migrating.
      const early = tag % 5 === 0;
      const delayMs = early ? Math.floor(random() * 600) : 20 + Math.floor(random() * 300);
      const lines = await runAndKill(tmp.file, tag, delayMs, !early);
      const acked = parse(lines);
      totalLines += acked.lines;
      if (!acked.ready) killedBeforeReady++;

      const integrity = await rawAll<{ integrity_check: string }>(tmp.file, 'PRAGMA integrity_check');
      expect(
        integrity.map((r) => r.integrity_check),
        `iteration ${tag}, seed ${seed}`,
      ).toEqual(['ok']);
      const store = await openSqliteStore({ file: tmp.file });
      try {
        await verify(store, tag, acked);
      } finally {
        await store.close();
      }
    }
    // The test is only meaningful if the writers got to acknowledge a good number of writes.
    expect(totalLines, `seed ${seed}`).toBeGreaterThan(ITERATIONS * 10);
    expect(killedBeforeReady).toBeLessThan(ITERATIONS);
  }, 120_000);
});
