/**
 * `fleetvisor export events|commands|telemetry …`: the stored events, commands or telemetry as
 * CSV or JSON Lines, streamed from the app running on the data folder (`GET /api/export/…`, found
 * and authenticated through src/host/app-client.ts) into a file or standard output, at the pace
 * the disk or the pipe takes it.
 *
 *   fleetvisor export telemetry --device pump-7 --metric temp --from 2026-12-01T00:00:00Z --out temp.csv
 *   fleetvisor export events --format jsonl | jq .kind
 *
 * Exit codes: 0 written, 1 refused by the app (a bad parameter: its reason) or cut off, 2 usage,
 * 3 no app runs on the data folder.
 */
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import { connectFromCommandLine } from './app-client.js';
import { EXPORT_KINDS } from './export.js';

export const EXPORT_USAGE = `Usage: fleetvisor export events|commands|telemetry [options]

Streams stored rows from the running app as CSV (a header row; every time as ISO 8601 UTC and as
epoch milliseconds) or JSON Lines (one object per line).

Options:
  --from TIME         from this time on (ISO 8601 such as 2026-12-01T00:00:00Z, or epoch ms)
  --to TIME           before this time
  --device ID         only this device (repeat for more)
  --metric NAME       telemetry: only this metric (repeat for more)
  --bucket SECONDS    telemetry: downsample into buckets of this many seconds (avg, min, max, count)
  --kind KIND         events: only this kind
  --format csv|jsonl  default csv
  --out FILE          write to FILE (default: standard output)
  --data-dir DIR      the data folder of the running app (default: FLEETVISOR_DATA_DIR, else the OS folder)

Examples:
  fleetvisor export telemetry --device pump-7 --metric temp --from 2026-12-01T00:00:00Z --out temp.csv
  fleetvisor export telemetry --bucket 60 --format jsonl --out minutes.jsonl
  fleetvisor export events --device pump-7 --kind state --out pump-7-states.csv
  fleetvisor export commands --from 2026-12-01 --format jsonl | jq .status
`;

export interface ExportCliIo {
  readonly stdout: Writable;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

const FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  device: { type: 'string', multiple: true },
  metric: { type: 'string', multiple: true },
  bucket: { type: 'string' },
  kind: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runExportCli(argv: readonly string[], io: ExportCliIo): Promise<number> {
  const fail = (code: string, message: string, exitCode: number) => {
    io.stderr(`fleetvisor export: ${code}: ${message}\n`);
    return exitCode;
  };
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: FLAGS });
  } catch (error) {
    return fail('usage', (error as Error).message, 2);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    io.stderr(EXPORT_USAGE);
    return values.help ? 0 : 2;
  }
  const [kind, ...extra] = positionals;
  if (extra.length > 0 || !(EXPORT_KINDS as readonly string[]).includes(kind!))
    return fail('usage', `export takes one of ${EXPORT_KINDS.join(', ')}`, 2);

  // The app checks the parameters (one set of rules for the UI, the CLI and any script).
  const query = new URLSearchParams();
  for (const name of ['format', 'from', 'to', 'bucket', 'kind'] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  for (const d of values.device ?? []) query.append('device', d);
  for (const m of values.metric ?? []) query.append('metric', m);

  const connected = connectFromCommandLine(values['data-dir'], io);
  if (!connected.ok) return fail(connected.error.code, connected.error.message, 3);
  const answer = await connected.value.get(`/api/export/${kind}?${query}`);
  if (!answer.ok) return fail(answer.error.code, answer.error.message, 1);
  const res = answer.value;
  if (res.status !== 200 || res.body === null) {
    const text = await res.text().catch(() => '');
    let reason = `HTTP ${res.status}`;
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (body.error?.message) return fail(body.error.code ?? 'refused', body.error.message, 1);
    } catch {
      if (text) reason += `: ${text.slice(0, 200)}`;
    }
    return fail('refused', reason, 1);
  }

  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  // A file is written beside its name and renamed at the end: a cut-off export never looks whole.
  const out = values.out === undefined ? undefined : resolve(io.cwd, values.out);
  const partial = out === undefined ? undefined : `${out}.part`;
  let bytes = 0;
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  try {
    if (partial === undefined) await pipeline(body, io.stdout, { end: false });
    else {
      await pipeline(body, createWriteStream(partial, { mode: 0o600 }));
      renameSync(partial, out!);
    }
  } catch (error) {
    if (partial !== undefined) rmSync(partial, { force: true });
    // The reader of a pipe stopped (`… | head`): what it wanted, it got.
    if (partial === undefined && (error as NodeJS.ErrnoException).code === 'EPIPE') return 0;
    return fail('cutOff', `the export stopped after ${bytes} bytes: ${(error as Error).message}`, 1);
  }
  if (out !== undefined) io.stderr(`wrote ${bytes} bytes to ${out}\n`);
  return 0;
}

// Run when executed directly (`fleetvisor export …`), not when imported by tests.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await runExportCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  });
}
