/**
 * `fleetvisor devices …`, `fleetvisor act …` and `fleetvisor events …`: the fleet from a terminal,
 * through the app running on the data folder (src/host/app-client.ts finds it and its token; the
 * shared runner is `runAppCli` of src/host/update-cli.ts). Every change goes through the same API
 * as the UI (src/host/api/devices-admin.ts) and is audited with the actor `cli`… as the transport
 * names it.
 *
 * Exit codes: 0 done, 1 refused (for `act` and `devices import`: any device or row failed),
 * 2 usage, 3 no app runs on the data folder.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { isFinalStatus } from '../devices/create-command-tracker.js';
import { COMMAND_STATUSES, type CommandStatus } from '../store/store.js';
import type { AppClient } from './app-client.js';
import type { ActResult, CommandView, EventView } from './contract.js';
import type { Values } from './devices-commands.js';
import { listDevices, parseJsonObject, runDevicesCommand, usage } from './devices-commands.js';
import type { UpdateCliIo } from './update-cli.js';
import { CliError, must, runAppCli } from './update-cli.js';

const COMMON = `Options:
  --data-dir DIR     the data folder of the running app (default: FLEETVISOR_DATA_DIR, else the OS folder)
  --json             machine-readable output ({ ok, value } on stdout, { ok: false, error } on stderr)
`;

export const DEVICES_USAGE = `Usage: fleetvisor devices <command> [options]

  ls [--kind K] [--tag T]           the fleet: id, kind, state, name, tags
  show ID                           one device: state, link, attributes
  add --kind K --id ID [--name N] [--tag T …] [--attr k=v … | --attributes JSON] [--test]
                                    add a device; its attributes are checked by its kind;
                                    --test reads a Modbus device once first (nothing added if it fails)
  edit ID [--name N] [--tag T …] [--attr k=v … | --attributes JSON]
                                    rename, retag (--tag replaces the tags), change attributes
                                    (--attr changes one, --attributes replaces all; restarts the device)
  rm ID [--purge]                   remove it; its history stays unless --purge
  export [--format json|csv] [--kind K] [--tag T]
                                    every device's id, kind, name, tags, attributes
  import FILE [--format json|csv]   add or update devices from an export, row by row

${COMMON}
An --attr value is JSON when it parses as JSON (numbers, arrays…), else a string.

Examples:
  fleetvisor devices ls --kind modbus.device
  fleetvisor devices add --kind modbus.device --id meter-1 --name "Main meter" --tag hall \\
    --attr port=/dev/ttyUSB0 --attr slaveId=1 \\
    --attr 'registers=[{"name":"voltage","table":"input","address":0,"scale":0.1}]' --test
  fleetvisor devices edit meter-1 --attr pollMs=5000
  fleetvisor devices export --format csv > fleet.csv
  fleetvisor devices import fleet.csv
  fleetvisor devices rm meter-1 --purge
`;

export const ACT_USAGE = `Usage: fleetvisor act SELECTOR ACTION [--args JSON] [--timeout SECONDS] [--no-wait]

  SELECTOR   a device id, ids separated by commas, tag:T (every device with tag T) or kind:K
  ACTION     one of the kind's actions (see 'fleetvisor devices show ID')

Waits for each device's answer (at most --timeout, default 30 s) and prints one line per device
with its outcome: succeeded (round trip, reply), failed, timedOut, … — or still open when the time
ran out. Exits 0 only if the action succeeded on every device, 1 otherwise. --no-wait returns once
every command is accepted (sent or queued), counting those as succeeded.

${COMMON}
Examples:
  fleetvisor act pump-1 reboot
  fleetvisor act tag:hall identify
  fleetvisor act meter-1,meter-2 write --args '{"register":"setpoint","value":21.5}'
`;

export const EVENTS_USAGE = `Usage: fleetvisor events [--device ID] [--kind K] [--limit N] [--follow]

  The event log, oldest first: the last N (default 50) events, of one device or one kind;
  --follow then prints new events as they come (Ctrl-C stops).

${COMMON}
Examples:
  fleetvisor events --device meter-1
  fleetvisor events --kind device.audit --follow
`;

const FLAGS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  kind: { type: 'string' },
  tag: { type: 'string', multiple: true },
  id: { type: 'string' },
  name: { type: 'string' },
  attr: { type: 'string', multiple: true },
  attributes: { type: 'string' },
  test: { type: 'boolean' },
  purge: { type: 'boolean' },
  format: { type: 'string' },
  args: { type: 'string' },
  device: { type: 'string' },
  limit: { type: 'string' },
  follow: { type: 'boolean' },
  interval: { type: 'string' },
  'no-wait': { type: 'boolean' },
  timeout: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** Whether a command status (as the API sends it) will not change any more. */
const isFinal = (status: string) =>
  (COMMAND_STATUSES as readonly string[]).includes(status) && isFinalStatus(status as CommandStatus);

export function runDevicesCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli('devices', DEVICES_USAGE, argv, io, (c) => runDevicesCommand(c, io), { flags: FLAGS });
}

/** The ids a selector names: `tag:T`, `kind:K`, or ids separated by commas. */
async function resolveSelector(app: AppClient, selector: string): Promise<string[]> {
  if (selector.startsWith('tag:') || selector.startsWith('kind:')) {
    const [key, value] = [
      selector.slice(0, selector.indexOf(':')),
      selector.slice(selector.indexOf(':') + 1),
    ];
    if (!value) usage(`${selector}: ${key}: needs a value`);
    const rows = await listDevices(app, { [key!]: value });
    if (rows.length === 0) throw new CliError('noDevices', `no device matches ${selector}`);
    return rows.map((d) => d.id);
  }
  const ids = selector
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) usage('act: SELECTOR names no device');
  return ids;
}

export function runActCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli(
    'act',
    ACT_USAGE,
    argv,
    io,
    async ({ values, command, args, app, out }) => {
      const v = values as Values;
      if (args.length !== 1) usage('act takes SELECTOR and ACTION');
      const ids = await resolveSelector(app, command);
      const results = await must(
        app.call('act', {
          ids,
          action: args[0]!,
          args: v.args ? parseJsonObject(v.args, '--args') : {},
        }),
      );
      const timeoutMs = Number(v.timeout ?? 30) * 1000;
      if (!(timeoutMs > 0)) usage('--timeout: seconds, over 0');
      // Each command's outcome, followed until it ends (the act answer says only "sent").
      const outcomes = new Map<string, CommandView>();
      const open = (r: ActResult) =>
        r.ok &&
        r.commandId !== undefined &&
        !isFinal(outcomes.get(r.commandId)?.status ?? r.commandStatus ?? '');
      const deadline = Date.now() + timeoutMs;
      while (!v['no-wait'] && results.some(open) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        for (const r of results.filter(open)) {
          const page = await must(app.call('commands', { id: r.id, limit: 50 }));
          const c = page.items.find((x) => x.commandId === r.commandId);
          if (c) outcomes.set(c.commandId, c);
        }
      }
      const statusOf = (r: ActResult) =>
        r.commandId ? (outcomes.get(r.commandId)?.status ?? r.commandStatus ?? 'sent') : (r.state ?? 'done');
      const good = (r: ActResult) => r.ok && (v['no-wait'] || !r.commandId || statusOf(r) === 'succeeded');
      const lines = results.map((r) => {
        if (!r.ok) return `${r.id.padEnd(20)} FAILED  ${r.error?.code}: ${r.error?.message}`;
        const c = r.commandId ? outcomes.get(r.commandId) : undefined;
        const rtt = c?.completedAt ? `  ${c.completedAt - c.requestedAt} ms` : '';
        const detail = c?.error
          ? `  ${c.error.code}: ${c.error.message}`
          : c?.result !== undefined && c.result !== null
            ? `  ${JSON.stringify(c.result).slice(0, 120)}`
            : '';
        const status = statusOf(r);
        const still = !v['no-wait'] && r.commandId && !isFinal(status) ? ' (no answer yet)' : '';
        return `${r.id.padEnd(20)} ${good(r) ? 'ok    ' : 'FAILED'}  ${status}${still}${rtt}${detail}${r.commandId ? `  #${r.commandId.slice(0, 8)}` : ''}`;
      });
      const succeeded = results.filter(good).length;
      lines.push(`${succeeded} of ${results.length} succeeded`);
      out(
        results.map((r) => ({
          ...r,
          ...(r.commandId && outcomes.get(r.commandId) ? { outcome: outcomes.get(r.commandId) } : {}),
        })),
        lines.join('\n'),
      );
      return succeeded === results.length ? 0 : 1;
    },
    { flags: FLAGS },
  );
}

function describeEvent(e: EventView): string {
  return `${new Date(e.at).toISOString()}  #${e.seq}  ${(e.deviceId ?? '-').padEnd(16)} ${e.kind.padEnd(22)} ${JSON.stringify(e.data)}`;
}

export function runEventsCli(
  argv: readonly string[],
  io: UpdateCliIo,
  options: { readonly signal?: AbortSignal } = {},
): Promise<number> {
  return runAppCli(
    'events',
    EVENTS_USAGE,
    argv,
    io,
    async ({ values, command, args, app, json }) => {
      const v = values as Values;
      if (command !== 'tail' || args.length > 0)
        usage('events takes no arguments (filter with --device, --kind)');
      const limit = Number(v.limit ?? 50);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) usage('--limit: 1 to 1000');
      const intervalMs = Number(v.interval ?? 1) * 1000;
      if (!(intervalMs >= 100)) usage('--interval: seconds, at least 0.1');
      const filter = { ...(v.device ? { id: v.device } : {}), ...(v.kind ? { kind: v.kind } : {}) };
      const print = (events: readonly EventView[]) => {
        for (const e of events) io.stdout(json ? `${JSON.stringify(e)}\n` : `${describeEvent(e)}\n`);
      };
      const first = await must(app.call('events', { ...filter, limit }));
      print([...first.items].reverse());
      if (!v.follow) return 0;
      let last = first.items[0]?.seq ?? 0;
      while (!options.signal?.aborted) {
        await new Promise((r) => setTimeout(r, intervalMs));
        // Newest first: page back with the cursor until the last one printed.
        const fresh: EventView[] = [];
        let cursor: number | undefined;
        for (;;) {
          const page = await must(
            app.call('events', { ...filter, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) }),
          );
          const newer = page.items.filter((e) => e.seq > last);
          fresh.push(...newer);
          if (newer.length < page.items.length || page.next === null) break;
          cursor = page.next;
        }
        if (fresh.length > 0) {
          last = fresh[0]!.seq;
          print(fresh.reverse());
        }
      }
      return 0;
    },
    { flags: FLAGS, defaultCommand: 'tail' },
  );
}

const io: UpdateCliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
};

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = await runDevicesCli(process.argv.slice(2), io);

/** For the one-line runners of `fleetvisor act` and `fleetvisor events`. */
export const processIo = io;
