/**
 * Wire codec throughput: serial frames through encodeFrame + deframer, and telemetry decoding.
 *
 * Run with `npm run bench -- codec`. Each figure runs for a fixed time after a warm-up and
 * prints one BENCH line; nothing is asserted.
 */
import { createDeframer, encodeFrame } from '../../src/transports/framing.js';
import { decodeMessage, encodeMessage } from '../../src/transports/protocol.js';
import { gc, report } from './bench-kit.js';

const SUITE = 'codec';
const RUN_MS = 3000;
const WARMUP_MS = 500;

/** Calls `step(batch)` until `ms` have passed; returns operations per second. */
function rate(ms: number, batch: number, step: () => void): number {
  const start = performance.now();
  let ops = 0;
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) step();
    ops += batch;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

function framesPerSecond(): number {
  const payload = new Uint8Array(200);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff; // includes zeros
  let delivered = 0;
  let dropped = 0;
  const deframer = createDeframer({
    onFrame: () => {
      delivered++;
    },
    onError: () => {
      dropped++;
    },
  });
  const step = (): void => {
    payload[0] = (payload[0]! + 1) & 0xff;
    deframer.push(encodeFrame(payload));
  };
  rate(WARMUP_MS, 1000, step);
  gc();
  const before = delivered;
  let calls = 0;
  const perSecond = rate(RUN_MS, 1000, () => {
    calls++;
    step();
  });
  if (delivered - before !== calls || dropped !== 0)
    throw new Error(`lost frames: ${delivered - before} of ${calls}`);
  return perSecond;
}

function telemetryPerSecond(): number {
  const messages: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) {
    messages.push(
      encodeMessage({
        v: 1,
        type: 'telemetry',
        boot: 17,
        seq: 100_000 + i,
        ts: 1_732_350_000_000 + i * 1000,
        values: { temp: 21.5 + i / 10, humidity: 40.25, battery: 3.71, rssi: -67, uptime: 86_400 + i },
      }),
    );
  }
  let i = 0;
  let failures = 0;
  const step = (): void => {
    if (!decodeMessage(messages[i++ & 63]!).ok) failures++;
  };
  rate(WARMUP_MS, 1000, step);
  gc();
  const perSecond = rate(RUN_MS, 1000, step);
  if (failures > 0) throw new Error(`${failures} telemetry messages failed to decode`);
  return perSecond;
}

const bytes = encodeMessage({
  v: 1,
  type: 'telemetry',
  boot: 17,
  seq: 100_000,
  ts: 1_732_350_000_000,
  values: { temp: 21.5, humidity: 40.25, battery: 3.71, rssi: -67, uptime: 86_400 },
}).length;

report(
  SUITE,
  'framesPerSecond',
  Math.round(framesPerSecond()),
  'frames/s',
  '>=',
  200_000,
  '200-byte payloads, encode + deframe + CRC',
);
report(
  SUITE,
  'telemetryDecodesPerSecond',
  Math.round(telemetryPerSecond()),
  'msg/s',
  '>=',
  200_000,
  `${bytes}-byte telemetry, 5 metrics`,
);
