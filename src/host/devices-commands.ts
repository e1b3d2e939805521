/**
 * The subcommands of `fleetvisor devices …` (src/host/devices-cli.ts parses the flags, finds the
 * running app and prints a failure): one function per command, each given the invocation, plus
 * the argument helpers `fleetvisor act` shares.
 *
 * @example
 * // runDevicesCli(['show', 'meter-1'], io) calls show(invocation) with args ['meter-1']
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AppClient } from './app-client.js';
import type { ArgsOf, DeviceRow } from './contract.js';
import type { Invocation, UpdateCliIo } from './update-cli.js';
import { CliError, must } from './update-cli.js';

/** The flags of `devices`, `act` and `events` as parsed. */
export interface Values {
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
export type JsonArgs = NonNullable<ArgsOf<'deviceEdit'>['attributes']>;

/** Refuses the command line (exit 2). */
export const usage = (message: string): never => {
  throw new CliError('usage', message, 2);
};

/** A flag's JSON object (`--attributes`, `--args`), else a usage error naming `what`. */
export function parseJsonObject(text: string, what: string): JsonArgs {
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

export async function listDevices(
  app: AppClient,
  filter: { kind?: string; tag?: string },
): Promise<DeviceRow[]> {
  const page = await must(app.call('devices', { ...filter, limit: 10_000 }));
  return [...page.items];
}

/** Runs one `fleetvisor devices …` command against the running app; resolves with the exit code. */
export async function runDevicesCommand(c: Invocation, io: UpdateCliIo): Promise<number> {
  switch (c.command) {
    case 'ls':
    case 'list':
      return list(c);
    case 'show':
      return show(c);
    case 'add':
      return add(c);
    case 'edit':
      return edit(c);
    case 'rm':
    case 'remove':
      return remove(c);
    case 'export':
      return exportDevices(c, io);
    case 'import':
      return importDevices(c, io);
    default:
      return usage(`unknown command '${c.command}' (see fleetvisor devices --help)`);
  }
}

async function list(c: Invocation): Promise<number> {
  const v = c.values as Values;
  const tags = v.tag;
  if (c.args.length > 0) usage('devices ls takes no arguments (filter with --kind, --tag)');
  if ((tags?.length ?? 0) > 1) usage('devices ls: one --tag');
  const rows = await listDevices(c.app, {
    ...(v.kind ? { kind: v.kind } : {}),
    ...(tags?.[0] ? { tag: tags[0] } : {}),
  });
  c.out(rows, rows.length === 0 ? 'no devices' : rows.map(describeRow).join('\n'));
  return 0;
}

async function show(c: Invocation): Promise<number> {
  if (c.args.length !== 1) usage('devices show takes one ID');
  const d = await must(c.app.call('device', { id: c.args[0]! }));
  const link = d.link.up ? `up via ${d.link.via}` : `down${d.link.reason ? ` (${d.link.reason})` : ''}`;
  c.out(
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

async function add(c: Invocation): Promise<number> {
  const v = c.values as Values;
  if (c.args.length > 0) usage('devices add takes its fields as flags: --kind K --id ID …');
  if (!v.kind || !v.id) usage('devices add needs --kind and --id');
  const attributes = withAttrs(
    v.attributes ? parseJsonObject(v.attributes, '--attributes') : {},
    v.attr ?? [],
  );
  const r = await must(
    c.app.call('deviceAdd', {
      id: v.id!,
      kind: v.kind!,
      ...(v.name ? { name: v.name } : {}),
      tags: v.tag ?? [],
      attributes,
      test: v.test ?? false,
    }),
  );
  const read = r.read
    ? `\nread: ${Object.entries(r.read.values)
        .map(([k, x]) => `${k}=${x}`)
        .join(' ')}`
    : '';
  c.out(r, `added: ${describeRow(r.device)}${read}`);
  return 0;
}

async function edit(c: Invocation): Promise<number> {
  const v = c.values as Values;
  const tags = v.tag;
  if (c.args.length !== 1) usage('devices edit takes one ID');
  const id = c.args[0]!;
  let attributes: JsonArgs | undefined;
  if (v.attributes !== undefined) attributes = parseJsonObject(v.attributes, '--attributes');
  if (v.attr && v.attr.length > 0) {
    const current = attributes ?? ((await must(c.app.call('device', { id }))).attributes as JsonArgs);
    attributes = withAttrs(current, v.attr);
  }
  if (v.name === undefined && tags === undefined && attributes === undefined)
    usage('devices edit: nothing to change (--name, --tag, --attr, --attributes)');
  const r = await must(
    c.app.call('deviceEdit', {
      id,
      ...(v.name !== undefined ? { name: v.name } : {}),
      ...(tags !== undefined ? { tags } : {}),
      ...(attributes !== undefined ? { attributes } : {}),
    }),
  );
  c.out(
    r,
    r.changed.length === 0
      ? `unchanged: ${id}`
      : `changed ${r.changed.join(', ')}${r.restarted ? ' (restarted)' : ''}: ${describeRow(r.device)}`,
  );
  return 0;
}

async function remove(c: Invocation): Promise<number> {
  const v = c.values as Values;
  if (c.args.length !== 1) usage('devices rm takes one ID');
  const r = await must(c.app.call('deviceRemove', { id: c.args[0]!, purge: v.purge ?? false }));
  const kept = r.purged
    ? `purged ${r.purged.telemetry} telemetry points, ${r.purged.events} events, ${r.purged.commands} commands`
    : 'its telemetry, events and commands are kept (--purge deletes them)';
  c.out(r, `removed ${r.id}; ${kept}${r.brokerAccountRevoked ? '; broker account revoked' : ''}`);
  return 0;
}

async function exportDevices(c: Invocation, io: UpdateCliIo): Promise<number> {
  const v = c.values as Values;
  const tags = v.tag;
  if (c.args.length > 0) usage('devices export takes no arguments (redirect its output to a file)');
  const r = await must(
    c.app.call('devicesExport', {
      format: format(v) ?? 'json',
      ...(v.kind ? { kind: v.kind } : {}),
      ...(tags?.[0] ? { tag: tags[0] } : {}),
    }),
  );
  if (c.json) c.out(r, '');
  else io.stdout(r.text);
  return 0;
}

async function importDevices(c: Invocation, io: UpdateCliIo): Promise<number> {
  const v = c.values as Values;
  if (c.args.length !== 1) usage('devices import takes one FILE');
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, c.args[0]!), 'utf8');
  } catch (error) {
    throw new CliError('cannotRead', `cannot read ${c.args[0]}: ${(error as Error).message}`);
  }
  const f = format(v);
  const r = await must(c.app.call('devicesImport', { text, ...(f ? { format: f } : {}) }));
  const lines = r.results.map(
    (x) =>
      `row ${String(x.row).padStart(3)}  ${(x.id ?? '-').padEnd(20)} ${x.outcome}${x.error ? `  ${x.error.code}: ${x.error.message}` : ''}`,
  );
  lines.push(`${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged, ${r.failed} failed`);
  c.out(r, lines.join('\n'));
  return r.failed === 0 ? 0 : 1;
}
