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
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { isFinalStatus } from '../devices/create-command-tracker.js';
import { COMMAND_STATUSES, type CommandStatus } from '../store/store.js';
import type { AppClient } from './app-client.js';
import type { ActResult, ArgsOf, CommandView, DeviceRow, EventView } from './contract.js';
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

interface Values {
  readonly kind?: string;
  readonly tag?: string[];
  readonly id?: string;
  readonly name?: string;
  readonly attr?: string[];
  readonly attributes?: string;
  readonly test?: boolean;
  readonly purge?: boolean;
  readonly format?: string;
  readonly args?: string;
  readonly device?: string;
  readonly limit?: string;
  readonly follow?: boolean;
  readonly interval?: string;
  readonly 'no-wait'?: boolean;
  readonly timeout?: string;
}

/** Attributes and action arguments as the API takes them. */
type JsonArgs = NonNullable<ArgsOf<'deviceEdit'>['attributes']>;

/** Whether a command status (as the API sends it) will not change any more. */
const isFinal = (status: string) =>
  (COMMAND_STATUSES as readonly string[]).includes(status) && isFinalStatus(status as CommandStatus);

const usage = (message: string): never => {
  throw new CliError('usage', message, 2);
};

function parseJsonObject(text: string, what: string): JsonArgs {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return usage(`${what}: not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    usage(`${what}: a JSON object expected`);
  return value as JsonArgs;
}

/** `--attr k=v …` over `base`: each value JSON when it parses, else the string. */
function withAttrs(base: JsonArgs, attrs: readonly string[]): JsonArgs {
  const out = { ...base };
  for (const a of attrs) {
    const at = a.indexOf('=');
    if (at <= 0) usage(`--attr ${a}: KEY=VALUE expected`);
    const text = a.slice(at + 1);
    let value: JsonArgs[string];
    try {
      value = JSON.parse(text) as JsonArgs[string];
    } catch {
      value = text;
    }
    out[a.slice(0, at)] = value;
  }
  return out;
}

function format(v: Values): 'json' | 'csv' | undefined {
  if (v.format === undefined) return undefined;
  if (v.format !== 'json' && v.format !== 'csv') usage(`--format ${v.format}: json or csv`);
  return v.format as 'json' | 'csv';
}

function describeRow(d: DeviceRow): string {
  return `${d.id.padEnd(20)} ${d.kind.padEnd(20)} ${d.state.padEnd(14)} ${d.name}${d.tags.length > 0 ? `  [${d.tags.join(', ')}]` : ''}`;
}

async function listDevices(app: AppClient, filter: { kind?: string; tag?: string }): Promise<DeviceRow[]> {
  const page = await must(app.call('devices', { ...filter, limit: 10_000 }));
  return [...page.items];
}

export function runDevicesCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli(
    'devices',
    DEVICES_USAGE,
    argv,
    io,
    async ({ values, command, args, app, json, out }) => {
      const v = values as Values;
      const tags = v.tag;
      switch (command) {
        case 'ls':
        case 'list': {
          if (args.length > 0) usage('devices ls takes no arguments (filter with --kind, --tag)');
          if ((tags?.length ?? 0) > 1) usage('devices ls: one --tag');
          const rows = await listDevices(app, {
            ...(v.kind ? { kind: v.kind } : {}),
            ...(tags?.[0] ? { tag: tags[0] } : {}),
          });
          out(rows, rows.length === 0 ? 'no devices' : rows.map(describeRow).join('\n'));
          return 0;
        }
        case 'show': {
          if (args.length !== 1) usage('devices show takes one ID');
          const d = await must(app.call('device', { id: args[0]! }));
          const link = d.link.up
            ? `up via ${d.link.via}`
            : `down${d.link.reason ? ` (${d.link.reason})` : ''}`;
          out(
            d,
            [
              `${d.id}  ${d.name}`,
              `  kind        ${d.kind}`,
              `  state       ${d.state} (${d.health})`,
              `  link        ${link}`,
              `  tags        ${d.tags.join(', ') || '-'}`,
              `  actions     ${d.actions.map((a) => a.name).join(', ') || '-'}`,
              `  attributes  ${JSON.stringify(d.attributes, null, 2).replaceAll('\n', '\n  ')}`,
            ].join('\n'),
          );
          return 0;
        }
        case 'add': {
          if (args.length > 0) usage('devices add takes its fields as flags: --kind K --id ID …');
          if (!v.kind || !v.id) usage('devices add needs --kind and --id');
          const attributes = withAttrs(
            v.attributes ? parseJsonObject(v.attributes, '--attributes') : {},
            v.attr ?? [],
          );
          const r = await must(
            app.call('deviceAdd', {
              id: v.id!,
              kind: v.kind!,
              ...(v.name ? { name: v.name } : {}),
              tags: tags ?? [],
              attributes,
              test: v.test ?? false,
            }),
          );
          const read = r.read
            ? `\nread: ${Object.entries(r.read.values)
                .map(([k, x]) => `${k}=${x}`)
                .join(' ')}`
            : '';
          out(r, `added: ${describeRow(r.device)}${read}`);
          return 0;
        }
        case 'edit': {
          if (args.length !== 1) usage('devices edit takes one ID');
          const id = args[0]!;
          let attributes: JsonArgs | undefined;
          if (v.attributes !== undefined) attributes = parseJsonObject(v.attributes, '--attributes');
          if (v.attr && v.attr.length > 0) {
            const current = attributes ?? ((await must(app.call('device', { id }))).attributes as JsonArgs);
            attributes = withAttrs(current, v.attr);
          }
          if (v.name === undefined && tags === undefined && attributes === undefined)
            usage('devices edit: nothing to change (--name, --tag, --attr, --attributes)');
          const r = await must(
            app.call('deviceEdit', {
              id,
              ...(v.name !== undefined ? { name: v.name } : {}),
              ...(tags !== undefined ? { tags } : {}),
              ...(attributes !== undefined ? { attributes } : {}),
            }),
          );
          out(
            r,
            r.changed.length === 0
              ? `unchanged: ${id}`
              : `changed ${r.changed.join(', ')}${r.restarted ? ' (restarted)' : ''}: ${describeRow(r.device)}`,
          );
          return 0;
        }
        case 'rm':
        case 'remove': {
          if (args.length !== 1) usage('devices rm takes one ID');
          const r = await must(app.call('deviceRemove', { id: args[0]!, purge: v.purge ?? false }));
          const kept = r.purged
            ? `purged ${r.purged.telemetry} telemetry points, ${r.purged.events} events, ${r.purged.commands} commands`
            : 'its telemetry, events and commands are kept (--purge deletes them)';
          out(r, `removed ${r.id}; ${kept}${r.brokerAccountRevoked ? '; broker account revoked' : ''}`);
          return 0;
        }
        case 'export': {
          if (args.length > 0) usage('devices export takes no arguments (redirect its output to a file)');
          const r = await must(
            app.call('devicesExport', {
              format: format(v) ?? 'json',
              ...(v.kind ? { kind: v.kind } : {}),
              ...(tags?.[0] ? { tag: tags[0] } : {}),
            }),
          );
          if (json) out(r, '');
          else io.stdout(r.text);
          return 0;
        }
        case 'import': {
          if (args.length !== 1) usage('devices import takes one FILE');
          let text: string;
          try {
            text = readFileSync(resolve(io.cwd, args[0]!), 'utf8');
          } catch (error) {
            throw new CliError('cannotRead', `cannot read ${args[0]}: ${(error as Error).message}`);
          }
          const f = format(v);
          const r = await must(app.call('devicesImport', { text, ...(f ? { format: f } : {}) }));
          const lines = r.results.map(
            (x) =>
              `row ${String(x.row).padStart(3)}  ${(x.id ?? '-').padEnd(20)} ${x.outcome}${x.error ? `  ${x.error.code}: ${x.error.message}` : ''}`,
          );
          lines.push(`${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged, ${r.failed} failed`);
          out(r, lines.join('\n'));
          return r.failed === 0 ? 0 : 1;
        }
        default:
          return usage(`unknown command '${command}' (see fleetvisor devices --help)`);
      }
    },
    { flags: FLAGS },
  );
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
