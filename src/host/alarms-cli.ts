/**
 * `fleetvisor alarms …`: the alarms from a terminal, through the app running on the data folder
 * (the shared runner `runAppCli` of src/host/update-cli.ts finds it and its token).
 *
 * @example
 * fleetvisor alarms ls --state unacked --severity critical
 * fleetvisor alarms ack 42 --json
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import type { AlarmView } from './contract.js';
import type { UpdateCliIo } from './update-cli.js';
import { CliError, must, runAppCli } from './update-cli.js';

export const ALARMS_USAGE = `Usage: fleetvisor alarms <command> [options]

Alarms of the app running on the data folder (rules: the app's Alarms view, or alarm-rules.json
in the data folder).

Commands:
  ls                 the alarms, newest first (default: open ones)
  ack ID             acknowledge an alarm
  shelve ID MINUTES  shelve an open alarm for a while (0 unshelves it)
  rules              the rules, with their status

Options:
  --state S          ls: active (open), unacked, shelved, cleared or all (default active)
  --severity S       ls: critical, major, minor or warning
  --device ID        ls: one device's alarms
  --limit N          ls: at most N (default 100)
  --json             print { ok, value } / { ok: false, error } as JSON
  --data-dir DIR     the app's data folder (default: FLEETVISOR_DATA_DIR, else the usual place)
  -h, --help         this text

Exit codes: 0 done, 1 refused (the error says why), 2 bad usage, 3 no app running on the folder.
`;

const FLAGS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  state: { type: 'string' },
  severity: { type: 'string' },
  device: { type: 'string' },
  limit: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const STATES = ['active', 'unacked', 'shelved', 'cleared', 'all'] as const;
const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** One line per alarm: id, severity, device, rule, state (with who), raised, message. */
export function describeAlarm(a: AlarmView, now = Date.now()): string {
  const state =
    a.clearedAt !== null
      ? `cleared (${a.clearedBy})`
      : a.shelvedUntil !== null && a.shelvedUntil > now
        ? `shelved by ${a.shelvedBy} until ${time(a.shelvedUntil)}`
        : a.ackedAt !== null
          ? `acked by ${a.ackedBy}`
          : 'open';
  return `${String(a.id).padStart(5)}  ${a.severity.padEnd(8)} ${a.deviceId.padEnd(20)} ${a.ruleId.padEnd(16)} ${state.padEnd(24)} ${time(a.raisedAt)}  ${a.message}`;
}

const id = (text: string | undefined) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError('usage', `an alarm id is a whole number, not '${text}'`, 2);
  return n;
};

export function runAlarmsCli(argv: readonly string[], io: UpdateCliIo): Promise<number> {
  return runAppCli(
    'alarms',
    ALARMS_USAGE,
    argv,
    io,
    async ({ values, command, args, app, out }) => {
      const v = values as { state?: string; severity?: string; device?: string; limit?: string };
      switch (command) {
        case 'ls':
        case 'list': {
          if (args.length > 0) throw new CliError('usage', 'alarms ls takes its filters as flags', 2);
          const state = (v.state ?? 'active') as (typeof STATES)[number];
          if (!STATES.includes(state))
            throw new CliError('usage', `--state is one of ${STATES.join(', ')}`, 2);
          const severity = v.severity as (typeof SEVERITIES)[number] | undefined;
          if (severity !== undefined && !SEVERITIES.includes(severity))
            throw new CliError('usage', `--severity is one of ${SEVERITIES.join(', ')}`, 2);
          const limit = v.limit === undefined ? 100 : Number(v.limit);
          const page = await must(
            app.call('alarms', {
              state,
              limit,
              ...(severity ? { severity } : {}),
              ...(v.device ? { deviceId: v.device } : {}),
            }),
          );
          const c = page.counts;
          out(
            page,
            [
              ...(page.items.length === 0 ? ['no alarms'] : page.items.map((a) => describeAlarm(a))),
              `${c.active} open, ${c.unacked} unacknowledged, ${c.shelved} shelved`,
            ].join('\n'),
          );
          return 0;
        }
        case 'ack': {
          if (args.length !== 1) throw new CliError('usage', 'alarms ack takes one alarm ID', 2);
          const a = await must(app.call('alarmAck', { id: id(args[0]) }));
          out(a, `acknowledged: ${describeAlarm(a)}`);
          return 0;
        }
        case 'shelve': {
          const minutes = Number(args[1]);
          if (args.length !== 2 || !Number.isFinite(minutes) || minutes < 0)
            throw new CliError('usage', 'alarms shelve takes an alarm ID and MINUTES (0 unshelves it)', 2);
          const a = await must(
            app.call('alarmShelve', { id: id(args[0]), forMs: Math.round(minutes * 60_000) }),
          );
          out(a, `${minutes > 0 ? 'shelved' : 'unshelved'}: ${describeAlarm(a)}`);
          return 0;
        }
        case 'rules': {
          const rules = await must(app.call('alarmRules', {}));
          out(
            rules,
            rules.length === 0
              ? 'no alarm rules'
              : rules
                  .map(
                    (r) =>
                      `${r.rule.id.padEnd(16)} ${r.rule.severity.padEnd(8)} ${r.status.padEnd(8)} ${String(r.active).padStart(4)} open  ${r.description}${r.error ? `  (${r.error})` : ''}`,
                  )
                  .join('\n'),
          );
          return 0;
        }
        default:
          throw new CliError('usage', `unknown alarms command '${command}'\n\n${ALARMS_USAGE}`, 2);
      }
    },
    { flags: FLAGS, defaultCommand: 'ls' },
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = await runAlarmsCli(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  });
