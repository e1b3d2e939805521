/**
 * `fleetvisor update …`: firmware updates of single devices from a terminal, through the app
 * running on the data folder (src/host/app-client.ts finds it and its token; docs/firmware.md §7).
 *
 *   fleetvisor update start pump-7 ad36f74d --wait   # update to a stored image, wait for the end
 *   fleetvisor update list                           # every device's current or last job
 *   fleetvisor update cancel pump-7                  # before the image is applied
 *
 * Exit codes: 0 done (with --wait: the update succeeded), 1 refused or the update did not
 * succeed, 2 usage, 3 no app runs on the data folder.
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveDataDir } from '../store/data-dir.js';
import type { AppClient } from './app-client.js';
import { connectToRunningApp } from './app-client.js';
import type { FirmwareJobView } from './contract.js';

export const UPDATE_USAGE = `Usage: fleetvisor update <command> [options]

  start DEVICE SHA256 [--wait]  update one device to a stored image (8+ leading hex digits of its
                                SHA-256, from 'fleetvisor firmware list'); --wait follows it to the end
  list                          every device's current or last update job
  cancel DEVICE                 cancel an update whose image is not applied yet

Options:
  --data-dir DIR                the data folder of the running app (default: FLEETVISOR_DATA_DIR, else the OS folder)
  --json                        machine-readable output
  --timeout SECONDS             with --wait, give up after this long (default 900)

Talks to the app running on the data folder (headless or desktop): its address comes from the
folder's lock file, its token from ui-session.json, readable by you alone.

Examples:
  fleetvisor firmware import assets/firmware/sample-1.1.0.bin --demo
  fleetvisor update start demo-m001 ad36f74d --wait
`;

export interface UpdateCliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const FINAL = ['succeeded', 'rolledBack', 'failed', 'cancelled'];

export function describeJob(j: FirmwareJobView): string {
  const pct = j.size > 0 ? Math.floor((j.offset / j.size) * 100) : 0;
  const rate =
    j.step === 'transferring' && j.bytesPerSecond > 0 ? ` ${(j.bytesPerSecond / 1024).toFixed(1)} KiB/s` : '';
  const left =
    j.deadline !== null ? ` (${Math.max(0, Math.round((j.deadline - Date.now()) / 1000))} s left)` : '';
  const error = j.error ? `  ${j.error.code} at ${j.error.step}: ${j.error.message}` : '';
  return `${j.deviceId.padEnd(20)} ${j.version.padEnd(10)} ${j.step.padEnd(12)} ${String(pct).padStart(3)}% of ${j.size} B${rate}${left}${error}`;
}

export async function runUpdateCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        json: { type: 'boolean' },
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    json = values.json ?? false;
    const [command, ...args] = positionals;
    if (values.help || command === undefined || command === 'help') {
      io.stdout(UPDATE_USAGE);
      return command === undefined && !values.help ? 2 : 0;
    }
    const dataDir = resolveDataDir({
      explicit: values['data-dir'],
      env: io.env,
      platform: process.platform,
      homeDir: homedir(),
      cwd: io.cwd,
    });
    const connected = connectToRunningApp(dataDir);
    if (!connected.ok) throw new CliError(connected.error.code, connected.error.message, 3);
    const app = connected.value;
    const out = (value: unknown, text: string) =>
      io.stdout(json ? `${JSON.stringify({ ok: true, value }, null, 2)}\n` : `${text}\n`);

    switch (command) {
      case 'list': {
        if (args.length > 0) throw new CliError('usage', 'update list takes no arguments', 2);
        const jobs = await must(app.call('firmwareJobs', {}));
        out(jobs, jobs.length === 0 ? 'no firmware updates' : jobs.map(describeJob).join('\n'));
        return 0;
      }
      case 'cancel': {
        if (args.length !== 1) throw new CliError('usage', 'update cancel takes one DEVICE', 2);
        const job = await must(app.call('firmwareCancel', { deviceId: args[0]! }));
        out(job, `cancelled: ${describeJob(job)}`);
        return 0;
      }
      case 'start': {
        if (args.length !== 2 || !/^[0-9a-f]{8,64}$/.test(args[1]!))
          throw new CliError(
            'usage',
            'update start takes DEVICE and 8 to 64 hex digits of an image SHA-256',
            2,
          );
        const [deviceId, prefix] = args as [string, string];
        const images = (await must(app.call('firmwareList', {}))).images.filter((i) =>
          i.sha256.startsWith(prefix),
        );
        if (images.length === 0)
          throw new CliError(
            'notFound',
            `no stored image's SHA-256 starts with ${prefix} (see 'fleetvisor firmware list')`,
          );
        if (images.length > 1)
          throw new CliError(
            'ambiguous',
            `${images.length} images' SHA-256 start with ${prefix}; give more digits`,
          );
        const started = await must(app.call('firmwareUpdate', { deviceId, sha256: images[0]!.sha256 }));
        if (!values.wait) {
          out(started, `started: ${describeJob(started)}`);
          return 0;
        }
        if (!json) io.stdout(`started: ${describeJob(started)}\n`);
        const final = await follow(app, deviceId, Number(values.timeout ?? 900) * 1000, (j) => {
          if (!json) io.stdout(`${describeJob(j)}\n`);
        });
        out(final, `${final.step}: ${describeJob(final)}`);
        return final.step === 'succeeded' ? 0 : 1;
      }
      default:
        throw new CliError('usage', `unknown update command '${command}'\n\n${UPDATE_USAGE}`, 2);
    }
  } catch (error) {
    const e =
      error instanceof CliError
        ? error
        : new CliError(
            (error as { code?: string }).code ?? 'error',
            (error as Error).message,
            String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS') ? 2 : 1,
          );
    io.stderr(
      json
        ? `${JSON.stringify({ ok: false, error: { code: e.code, message: e.message } })}\n`
        : `fleetvisor update: ${e.code}: ${e.message}\n`,
    );
    return e.exitCode;
  }
}

async function must<T>(
  p: Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>,
): Promise<T> {
  const r = await p;
  if (!r.ok) throw new CliError(r.error.code, r.error.message);
  return r.value;
}

/** Polls the device's job once a second, telling each change of step, until it ends. */
async function follow(
  app: AppClient,
  deviceId: string,
  timeoutMs: number,
  onStep: (job: FirmwareJobView) => void,
): Promise<FirmwareJobView> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const job = (await must(app.call('firmwareJobs', {}))).find((j) => j.deviceId === deviceId);
    if (!job) throw new CliError('noJob', `the app has no update of ${deviceId} any more`);
    if (FINAL.includes(job.step)) return job;
    if (job.step !== last) onStep(job);
    last = job.step;
    if (Date.now() > deadline)
      throw new CliError(
        'timeout',
        `still ${job.step} after ${Math.round(timeoutMs / 1000)} s; it goes on in the app`,
      );
    await new Promise((r) => setTimeout(r, 1000));
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runUpdateCli(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  });
}
