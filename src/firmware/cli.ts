/**
 * `fleetvisor firmware …`: keys, signing, import and listing from a terminal (docs/firmware.md).
 *
 *   keygen NAME                        NAME.key (private, 0600) and NAME.pub; prints the key id
 *   sign IMAGE --key FILE --version V --kind K [--kind K2] [--hardware-revision R] [--soak SECONDS] [--trial SECONDS] [--out FILE]
 *                                      writes IMAGE.manifest.json, the signed manifest
 *   trust KEY.pub                      copies a public key into the data folder's trusted keys
 *   import IMAGE [--manifest FILE] [--allow-downgrade]
 *   list
 *   delete SHA256                      an image nothing uses (a unique prefix of 8+ hex digits)
 *
 * keygen and sign work on files only. trust, import, list and delete work on the data folder directly
 * (`--data-dir`, else FLEETVISOR_DATA_DIR, else the OS folder; `--demo` for the demo's database):
 * the firmware rows are written through SQLite's own locking, so this is safe with the app running
 * or not. A running app sees the new image on its next list. Every command takes `--json`.
 *
 * @example
 * // fleetvisor firmware keygen lab && fleetvisor firmware trust lab.pub
 * // fleetvisor firmware sign app.bin --key lab.key --version 1.1.0 --kind fleetvisor.generic
 * // fleetvisor firmware import app.bin && fleetvisor firmware list
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATABASE_FILE_NAME, resolveDataDir } from '../store/data-dir.js';
import type { AppImage, FirmwareFlags, FirmwareInvocation } from './cli-commands.js';
import { CliError, importImage, keygen, list, remove, sign, trust, withImages } from './cli-commands.js';

/** The demo's database (src/host/app.ts DEMO_DATABASE_FILE_NAME; a test keeps the two equal). */
export const DEMO_DATABASE = 'demo.sqlite';

export const FIRMWARE_USAGE = `Usage: fleetvisor firmware <command> [options]

  keygen NAME                 write an ed25519 key pair: NAME.key (private, keep it secret) and NAME.pub
  sign IMAGE --key FILE --version V --kind K [--kind K2 …] [--hardware-revision R] [--soak SECONDS]
       [--trial SECONDS] [--out FILE]
                              write the signed manifest (default IMAGE.manifest.json); --soak: the
                              default wait between the waves of a rollout of this image; --trial:
                              how long each device runs it unconfirmed before it is confirmed
  trust KEY.pub               add a public key to the data folder's trusted keys
  import IMAGE [--manifest FILE] [--allow-downgrade]
                              check and store an image (manifest default: IMAGE.manifest.json)
  list                        the stored images and the devices running each
  delete SHA256               delete an image no device runs or wants (8+ leading hex digits suffice)

Options for trust, import, list and delete:
  --data-dir DIR              the data folder (default: FLEETVISOR_DATA_DIR, else the OS folder)
  --demo                      the demo fleet's database (demo.sqlite), which also trusts the sample key
  --trusted-key FILE          trust this public key too (repeatable)
  --json                      machine-readable output
`;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** What the app running on the data folder lists (src/host/firmware-cli.ts); undefined: no app, or none asked. */
  readonly appImages?: (dataDir: string) => Promise<readonly AppImage[] | undefined>;
}

const FLAGS = {
  key: { type: 'string' },
  version: { type: 'string' },
  kind: { type: 'string', multiple: true },
  'hardware-revision': { type: 'string' },
  soak: { type: 'string' },
  trial: { type: 'string' },
  out: { type: 'string' },
  manifest: { type: 'string' },
  'allow-downgrade': { type: 'boolean' },
  'data-dir': { type: 'string' },
  demo: { type: 'boolean' },
  'trusted-key': { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs one `fleetvisor firmware …` command; resolves with the exit code (0 ok, 1 refused or failed, 2 usage). */
export async function runFirmwareCli(argv: readonly string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: FLAGS });
    json = values.json ?? false;
    const [command, ...args] = positionals;
    if (values.help || command === undefined || command === 'help') {
      io.stdout(FIRMWARE_USAGE);
      return command === undefined && !values.help ? 2 : 0;
    }
    return await dispatch(invocation(command, args, values, json, io));
  } catch (error) {
    const e =
      error instanceof CliError
        ? error
        : new CliError(
            (error as { code?: string }).code ?? 'error',
            (error as Error).message,
            isUsage(error) ? 2 : 1,
          );
    io.stderr(
      json
        ? `${JSON.stringify({ ok: false, error: { code: e.code, message: e.message } })}\n`
        : `fleetvisor firmware: ${e.code}: ${e.message}\n`,
    );
    return e.exitCode;
  }
}

function dispatch(c: FirmwareInvocation): Promise<number> | number {
  switch (c.command) {
    case 'keygen':
      return keygen(c);
    case 'sign':
      return sign(c);
    case 'trust':
      return trust(c);
    case 'import':
      return withImages(c, (images, file) => importImage(c, images, file)).catch((error: unknown) => {
        throw withDemoHint(error, c);
      });
    case 'list':
      return withImages(c, (images, file) => list(c, images, file));
    case 'delete':
      return withImages(c, (images, file) => remove(c, images, file));
    default:
      throw new CliError('usage', `unknown firmware command '${c.command}'\n\n${FIRMWARE_USAGE}`, 2);
  }
}

/**
 * An image refused for its key while a demo database sits beside the real one: the newcomer who
 * ran plain `npm start` (the demo) and imports the sample is told where it goes (`--demo`).
 */
function withDemoHint(error: unknown, c: FirmwareInvocation): unknown {
  if (!(error instanceof CliError) || error.code !== 'unknownKey' || c.values.demo) return error;
  if (!existsSync(join(c.dataDir(), DEMO_DATABASE))) return error;
  return new CliError(
    error.code,
    `${error.message}. For the demo fleet (plain \`npm start\`), which keeps its images in a database of its own that trusts the sample key: add --demo`,
    error.exitCode,
  );
}

function invocation(
  command: string,
  args: readonly string[],
  values: FirmwareFlags,
  json: boolean,
  io: CliIo,
): FirmwareInvocation {
  const at = (p: string) => resolve(io.cwd, p);
  const dataDir = () =>
    resolveDataDir({
      explicit: values['data-dir'],
      env: io.env,
      platform: process.platform,
      homeDir: homedir(),
      cwd: io.cwd,
    });
  return {
    command,
    args,
    values,
    at,
    one: (what) => {
      if (args.length !== 1) throw new CliError('usage', `firmware ${command} takes one ${what}`, 2);
      return at(args[0]!);
    },
    done: (value, text) => {
      io.stdout(json ? `${JSON.stringify({ ok: true, value }, null, 2)}\n` : `${text}\n`);
      return 0;
    },
    dataDir,
    database: () => join(dataDir(), values.demo ? DEMO_DATABASE : DATABASE_FILE_NAME),
    appImages: async () => (io.appImages ? await io.appImages(dataDir()).catch(() => undefined) : undefined),
  };
}

function isUsage(error: unknown): boolean {
  return String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const code = await runFirmwareCli(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  });
  process.exitCode = code;
}
