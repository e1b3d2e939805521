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
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';
import { parseTrialChecks } from '../firmware/trial-checks.js';
import type { AppClient } from './app-client.js';
import { connectFromCommandLine } from './app-client.js';
import { type Follower, followThroughRestarts } from './cli-follow.js';
import type { FirmwareJobView, RolloutView } from './contract.js';

export const UPDATE_USAGE = `Usage: fleetvisor update <command> [options]

  start DEVICE SHA256 [--wait] [--trial SECONDS] [--check CHECK …]
                                update one device to a stored image (8+ leading hex digits of its
                                SHA-256, from 'fleetvisor firmware list'); --wait follows it to the end;
                                --trial: its time on trial before it is confirmed (default: the
                                image's own, else 10 s); --check: a telemetry check of the trial,
                                METRIC<=N, METRIC>=N or METRIC (read at least once), repeatable;
                                a reading past a limit rolls the device back
  list                          every device's current or last update job
  cancel DEVICE                 cancel an update whose image is not applied yet

Options:
  --data-dir DIR                the data folder of the running app (default: FLEETVISOR_DATA_DIR, else the OS folder)
  --json                        machine-readable output
  --timeout SECONDS             with --wait, give up after this long (default 900)

--wait follows the update through a restart of the app (a crash, kill -9): the job goes on at its
step when the app starts again, and the command says so and keeps following it.

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

export class CliError extends Error {
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
  const checks =
    j.step === 'onTrial' && j.trialChecks.length > 0 ? `  checks ${j.trialChecks.join(', ')}` : '';
  return `${j.deviceId.padEnd(20)} ${j.version.padEnd(10)} ${j.step.padEnd(12)} ${String(pct).padStart(3)}% of ${j.size} B${rate}${left}${checks}${error}`;
}

/** Every flag of `fleetvisor update` and `fleetvisor rollout` (one parser for both). */
const FLAGS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  tag: { type: 'string' },
  running: { type: 'string' },
  device: { type: 'string', multiple: true },
  waves: { type: 'string' },
  'max-concurrent': { type: 'string' },
  'failure-share': { type: 'string' },
  'on-failure': { type: 'string' },
  soak: { type: 'string' },
  trial: { type: 'string' },
  check: { type: 'string', multiple: true },
  window: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>['values'];

export interface Invocation {
  readonly values: Flags;
  /**
   * The app on the same data folder found anew (another process after a restart); `--wait`
   * follows through it (src/host/cli-follow.ts).
   */
  readonly reconnect: () => ReturnType<typeof connectFromCommandLine>;
  readonly command: string;
  readonly args: readonly string[];
  readonly app: AppClient;
  readonly json: boolean;
  out(value: unknown, text: string): void;
}

/**
 * Parses the arguments, prints the usage when asked, finds the running app (exit 3 without one),
 * runs `body`, and prints a failure as `fleetvisor TOOL: code: message` (or JSON) with its exit code.
 * Another tool passes its own `flags` (with `data-dir`, `json` and `help`; its body reads `values`
 * by them) and a `defaultCommand` when it may be run without one.
 */
export async function runAppCli(
  tool: string,
  usage: string,
  argv: readonly string[],
  io: UpdateCliIo,
  body: (c: Invocation) => Promise<number>,
  options: { readonly flags?: ParseArgsConfig['options']; readonly defaultCommand?: string } = {},
): Promise<number> {
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: (options.flags ?? FLAGS) as typeof FLAGS,
    });
    json = values.json ?? false;
    const [command = options.defaultCommand, ...args] = positionals;
    if (values.help || command === undefined || command === 'help') {
      io.stdout(usage);
      return command === undefined && !values.help ? 2 : 0;
    }
    const connected = connectFromCommandLine(values['data-dir'], io);
    if (!connected.ok) throw new CliError(connected.error.code, connected.error.message, 3);
    return await body({
      values,
      reconnect: () => connectFromCommandLine(values['data-dir'], io),
      command,
      args,
      app: connected.value,
      json,
      out: (value, text) =>
        io.stdout(json ? `${JSON.stringify({ ok: true, value }, null, 2)}\n` : `${text}\n`),
    });
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
        : `fleetvisor ${tool}: ${e.code}: ${e.message}\n`,
    );
    return e.exitCode;
  }
}

export function runUpdateCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli('update', UPDATE_USAGE, argv, io, async (c) => {
    const { values, command, args, app, json, out } = c;
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
        const trial = trialMs(values.trial);
        const checks = trialChecks(values.check);
        const started = await must(
          app.call('firmwareUpdate', {
            deviceId,
            sha256: images[0]!.sha256,
            ...(trial !== undefined ? { trialMs: trial } : {}),
            ...(checks ? { trialChecks: checks } : {}),
          }),
        );
        if (!values.wait) {
          out(started, `started: ${describeJob(started)}`);
          return 0;
        }
        if (!json) io.stdout(`started: ${describeJob(started)}\n`);
        const timeoutMs = Number(values.timeout ?? 900) * 1000;
        const final = await follow(following(c, io, timeoutMs), deviceId, timeoutMs, (j) => {
          if (!json) io.stdout(`${describeJob(j)}\n`);
        });
        out(final, `${final.step}: ${describeJob(final)}`);
        return final.step === 'succeeded' ? 0 : 1;
      }
      default:
        throw new CliError('usage', `unknown update command '${command}'\n\n${UPDATE_USAGE}`, 2);
    }
  });
}

export async function must<T>(
  p: Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>,
): Promise<T> {
  const r = await p;
  if (!r.ok) throw new CliError(r.error.code, r.error.message);
  return r.value;
}

/** The app of an invocation, followed through its restarts until `timeoutMs` from now. */
function following(c: Invocation, io: UpdateCliIo, timeoutMs: number): Follower {
  return followThroughRestarts(c.app, {
    reconnect: c.reconnect,
    deadline: Date.now() + timeoutMs,
    say: (line) => io.stderr(`${line}\n`),
  });
}

/** Polls the device's job once a second, telling each change of step, until it ends. */
async function follow(
  app: Follower,
  deviceId: string,
  timeoutMs: number,
  onStep: (job: FirmwareJobView) => void,
): Promise<FirmwareJobView> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const job = (await app.call('firmwareJobs', { deviceId })).find((j) => j.deviceId === deviceId);
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

/** `--trial SECONDS` as the API's trialMs: whole seconds, 1 s to a day; undefined when not given. */
function trialMs(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 86_400)
    throw new CliError('usage', `--trial takes whole seconds from 1 to 86400, not '${v}'`, 2);
  return n * 1000;
}

/** `--check CHECK …` as the API's trialChecks, checked here (usage error naming the bad one). */
function trialChecks(v: readonly string[] | undefined): string[] | undefined {
  if (v === undefined || v.length === 0) return undefined;
  const parsed = parseTrialChecks(v);
  if (!parsed.ok) throw new CliError('usage', `--check: ${parsed.error.message}`, 2);
  return parsed.value.map((c) => c.text);
}

export const ROLLOUT_USAGE = `Usage: fleetvisor rollout <command> [options]

  create SHA256 [--tag T] [--running V] [--device ID …] [--waves "1,5%,25%,100%"]
         [--max-concurrent N] [--failure-share 0.2] [--on-failure pause|abort] [--soak SECONDS]
         [--trial SECONDS] [--check CHECK …] [--window "mon-fri 02:00-04:00 utc"] [--wait]
                     roll a stored image out in waves (8+ hex digits of its SHA-256); without
                     --device: every device of the image's kinds matching --tag and --running
                     that does not run the version yet, resolved now and frozen; with --window,
                     jobs start only inside that maintenance window (host time unless utc);
                     --soak between waves and --trial each device's time on trial default to
                     the image's own (its signed manifest's), else no soak and a 10 s trial;
                     --check 'temp<=90' --check rssi: telemetry checks of each device's trial
                     (METRIC<=N, METRIC>=N, or METRIC read at least once); a reading past a
                     limit rolls that device back at once, a metric never read at the trial's end
  list               every rollout of the running app
  show ID            one rollout: its waves and each device's state
  pause ID | resume ID | cancel ID
  delete ID          remove a damaged rollout (one whose saved record cannot be read back; it
                     runs nothing and holds no image); a rollout that reads is cancelled instead

Options: --data-dir DIR, --json, --timeout SECONDS (as for 'fleetvisor update'; default 3600).
--wait follows the rollout through a restart of the app, as for 'fleetvisor update'.
Exit codes: 0 done (with --wait: completed), 1 refused or not completed, 2 usage, 3 no app runs.

Example:
  fleetvisor rollout create ad36f74d --waves "1,50%,100%" --max-concurrent 5 --wait
  fleetvisor rollout create ad36f74d --trial 60 --check 'temp<=90' --check rssi
`;

/** "1, 5%, 25%, 100%" → waves: an integer is a device count, N% a share. */
export function parseWaves(text: string, maxConcurrent: number | undefined) {
  return text.split(',').map((part) => {
    const t = part.trim();
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
    const extra = maxConcurrent !== undefined ? { maxConcurrent } : {};
    if (pct) {
      const share = Number(pct[1]) / 100;
      if (!(share > 0 && share <= 1))
        throw new CliError('usage', `wave '${t}': a share is over 0 % and at most 100 %`, 2);
      return { share, ...extra };
    }
    if (/^\d+$/.test(t) && Number(t) >= 1) return { count: Number(t), ...extra };
    throw new CliError('usage', `wave '${t}' is neither a device count (5) nor a share (25%)`, 2);
  });
}

export function describeRollout(r: RolloutView, withDevices: boolean): string {
  if (r.damage)
    return `${r.id}  ${r.version || '?'}  damaged: ${r.damage.message} (saved ${r.damage.savedState ?? 'in an unknown state'}; 'fleetvisor rollout delete ${r.id}' removes it)`;
  const c = r.counts;
  const head =
    `${r.id}  ${r.version}  ${r.state}${r.reason ? ` (${r.reason})` : ''}  wave ${r.wave + 1} of ${r.waveEnds.length}  ` +
    `${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed, ${c.updating ?? 0} updating, ${c.pending ?? 0} pending of ${r.order.length}  by ${r.createdBy}` +
    (r.runsOn !== null ? `  on instance ${r.runsOn}` : '') +
    (r.window
      ? `  window ${r.window}${r.windowOpensAt !== null ? ` (shut; opens ${new Date(r.windowOpensAt).toISOString()})` : ''}`
      : '') +
    (r.trialChecks.length > 0 ? `  trial checks ${r.trialChecks.join(', ')}` : '');
  if (!withDevices) return head;
  const lines = r.order.map((id) => {
    const d = r.devices[id]!;
    return `  ${id.padEnd(24)} wave ${d.wave + 1}  ${d.state}${d.error ? `  ${d.error.code}: ${d.error.message}` : ''}`;
  });
  return [head, ...lines].join('\n');
}

export function runRolloutCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli('rollout', ROLLOUT_USAGE, argv, io, async (c) => {
    const { command, args, app, out } = c;
    const oneId = () => {
      if (args.length !== 1) throw new CliError('usage', `rollout ${command} takes one ID`, 2);
      return args[0]!;
    };
    switch (command) {
      case 'list': {
        const all = await must(app.call('rollouts', {}));
        out(all, all.length === 0 ? 'no rollouts' : all.map((r) => describeRollout(r, false)).join('\n'));
        return 0;
      }
      case 'show': {
        const id = oneId();
        const r = (await must(app.call('rollouts', {}))).find((x) => x.id === id);
        if (!r) throw new CliError('notFound', `no rollout '${id}'`);
        out(r, describeRollout(r, true));
        return 0;
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        const method =
          command === 'pause' ? 'rolloutPause' : command === 'resume' ? 'rolloutResume' : 'rolloutCancel';
        const r = await must(app.call(method, { id: oneId() }));
        out(r, describeRollout(r, false));
        return 0;
      }
      case 'delete': {
        const r = await must(app.call('rolloutDelete', { id: oneId() }));
        out(r, `deleted ${r.deleted}`);
        return 0;
      }
      case 'create':
        return rolloutCreateCommand(c, io);
      default:
        throw new CliError('usage', `unknown rollout command '${command}'\n\n${ROLLOUT_USAGE}`, 2);
    }
  });
}

/** `rollout create SHA256 …`: the flags as a rolloutCreate call; with --wait, followed to its end. */
async function rolloutCreateCommand(c: Invocation, io: UpdateCliIo): Promise<number> {
  const { values, args, app, json, out } = c;
  if (args.length !== 1 || !/^[0-9a-f]{8,64}$/.test(args[0]!))
    throw new CliError('usage', 'rollout create takes 8 to 64 hex digits of an image SHA-256', 2);
  const prefix = args[0]!;
  const images = (await must(app.call('firmwareList', {}))).images.filter((i) => i.sha256.startsWith(prefix));
  if (images.length !== 1)
    throw new CliError(
      images.length === 0 ? 'notFound' : 'ambiguous',
      images.length === 0
        ? `no stored image's SHA-256 starts with ${prefix} (see 'fleetvisor firmware list')`
        : `${images.length} images' SHA-256 start with ${prefix}; give more digits`,
    );
  const number = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new CliError('usage', `--${name} takes a number, not '${v}'`, 2);
    return n;
  };
  const onFailure = values['on-failure'];
  if (onFailure !== undefined && onFailure !== 'pause' && onFailure !== 'abort')
    throw new CliError('usage', '--on-failure is pause or abort', 2);
  const maxConcurrent = number(values['max-concurrent'], 'max-concurrent');
  const soak = number(values.soak, 'soak');
  const trial = trialMs(values.trial);
  const checks = trialChecks(values.check);
  const share = number(values['failure-share'], 'failure-share');
  const created = await must(
    app.call('rolloutCreate', {
      sha256: images[0]!.sha256,
      ...(values.device ? { devices: values.device } : {}),
      ...(values.tag ? { tag: values.tag } : {}),
      ...(values.running ? { runningVersion: values.running } : {}),
      ...(values.waves ? { waves: parseWaves(values.waves, maxConcurrent) } : {}),
      ...(share !== undefined ? { maxFailureShare: share } : {}),
      ...(onFailure ? { onFailure } : {}),
      ...(soak !== undefined ? { soakMs: Math.round(soak * 1000) } : {}),
      ...(trial !== undefined ? { trialMs: trial } : {}),
      ...(checks ? { trialChecks: checks } : {}),
      ...(values.window ? { window: values.window } : {}),
    }),
  );
  if (!values.wait) {
    out(created, `started ${describeRollout(created, false)}`);
    return 0;
  }
  if (!json) io.stdout(`started ${describeRollout(created, false)}\n`);
  const timeoutMs = Number(values.timeout ?? 3600) * 1000;
  const deadline = Date.now() + timeoutMs;
  const followed = following(c, io, timeoutMs);
  let last = '';
  for (;;) {
    const r = (await followed.call('rollouts', {})).find((x) => x.id === created.id);
    if (!r) throw new CliError('notFound', `the app has no rollout '${created.id}' any more`);
    const line = describeRollout(r, false);
    if (r.state !== 'running') {
      out(r, describeRollout(r, true));
      return r.state === 'completed' ? 0 : 1;
    }
    if (!json && line !== last) io.stdout(`${line}\n`);
    last = line;
    if (Date.now() > deadline) throw new CliError('timeout', `still running; it goes on in the app`);
    await new Promise((res) => setTimeout(res, 1000));
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
