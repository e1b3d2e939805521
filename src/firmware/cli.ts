/**
 * `fleetvisor firmware …`: keys, signing, import and listing from a terminal (docs/firmware.md).
 *
 *   keygen NAME                        NAME.key (private, 0600) and NAME.pub; prints the key id
 *   sign IMAGE --key FILE --version V --kind K [--kind K2] [--hardware-revision R] [--out FILE]
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
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { genericDevice } from '../devices/generic-device.js';
import { DATABASE_FILE_NAME, resolveDataDir } from '../store/data-dir.js';
import type { KindSlot } from './check-image.js';
import { generateSigningKeyPair, parsePrivateKey, parsePublicKey, TRUSTED_KEYS_DIR } from './keys.js';
import { describeImage, signManifest } from './manifest.js';
import { openFirmware } from './open-firmware.js';
import { parseFirmwareVersion } from './version.js';

/** The demo's database (src/host/app.ts DEMO_DATABASE_FILE_NAME; a test keeps the two equal). */
export const DEMO_DATABASE = 'demo.sqlite';

export const FIRMWARE_USAGE = `Usage: fleetvisor firmware <command> [options]

  keygen NAME                 write an ed25519 key pair: NAME.key (private, keep it secret) and NAME.pub
  sign IMAGE --key FILE --version V --kind K [--kind K2 …] [--hardware-revision R] [--out FILE]
                              write the signed manifest (default IMAGE.manifest.json)
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
}

/** Kinds known without a running app: the kinds that take firmware. */
const OFFLINE_KINDS: ReadonlyMap<string, KindSlot> = new Map([[genericDevice.kind, genericDevice]]);

class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Runs one `fleetvisor firmware …` command; resolves with the exit code (0 ok, 1 refused or failed, 2 usage). */
export async function runFirmwareCli(argv: readonly string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        key: { type: 'string' },
        version: { type: 'string' },
        kind: { type: 'string', multiple: true },
        'hardware-revision': { type: 'string' },
        out: { type: 'string' },
        manifest: { type: 'string' },
        'allow-downgrade': { type: 'boolean' },
        'data-dir': { type: 'string' },
        demo: { type: 'boolean' },
        'trusted-key': { type: 'string', multiple: true },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    json = values.json ?? false;
    const [command, ...args] = positionals;
    if (values.help || command === undefined || command === 'help') {
      io.stdout(FIRMWARE_USAGE);
      return command === undefined && !values.help ? 2 : 0;
    }
    const at = (p: string) => resolve(io.cwd, p);
    const one = (what: string): string => {
      if (args.length !== 1) throw new CliError('usage', `firmware ${command} takes one ${what}`, 2);
      return at(args[0]!);
    };
    const done = (value: unknown, text: string) => {
      io.stdout(json ? `${JSON.stringify({ ok: true, value }, null, 2)}\n` : `${text}\n`);
      return 0;
    };

    const dataDir = () =>
      resolveDataDir({
        explicit: values['data-dir'],
        env: io.env,
        platform: process.platform,
        homeDir: homedir(),
        cwd: io.cwd,
      });
    const database = () => join(dataDir(), values.demo ? DEMO_DATABASE : DATABASE_FILE_NAME);

    switch (command) {
      case 'keygen': {
        const base = one('NAME');
        const keyFile = `${base}.key`;
        const pubFile = `${base}.pub`;
        for (const f of [keyFile, pubFile])
          if (existsSync(f)) throw new CliError('exists', `${f} exists already; choose another NAME`);
        const pair = generateSigningKeyPair();
        writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
        writeFileSync(pubFile, pair.publicKeyPem, { flag: 'wx' });
        return done(
          { keyId: pair.keyId, privateKey: keyFile, publicKey: pubFile },
          `key ${pair.keyId}\n  private: ${keyFile} (keep it secret)\n  public:  ${pubFile} (trust it: fleetvisor firmware trust ${basename(pubFile)})`,
        );
      }

      case 'sign': {
        const imageFile = one('IMAGE');
        if (values.key === undefined) throw new CliError('usage', 'sign needs --key FILE (from keygen)', 2);
        if (values.version === undefined) throw new CliError('usage', 'sign needs --version V', 2);
        const version = parseFirmwareVersion(values.version);
        if (!version.ok) throw new CliError(version.error.code, version.error.message, 2);
        if (values.kind === undefined || values.kind.length === 0)
          throw new CliError('usage', `sign needs --kind K (e.g. --kind ${genericDevice.kind})`, 2);
        const key = parsePrivateKey(readText(at(values.key)), values.key);
        if (!key.ok) throw new CliError(key.error.code, key.error.message);
        const image = readBytes(imageFile);
        const hw = values['hardware-revision'];
        const manifest = signManifest(
          describeImage(image, {
            version: version.value,
            kinds: values.kind,
            ...(hw !== undefined ? { hardwareRevision: hw } : {}),
          }),
          key.value,
        );
        const out = values.out !== undefined ? at(values.out) : `${imageFile}.manifest.json`;
        writeFileSync(out, `${JSON.stringify(manifest, null, 2)}\n`);
        return done(
          { manifest: out, ...manifest },
          `signed ${version.value} for ${values.kind.join(', ')} (${image.byteLength} bytes, SHA-256 ${manifest.signed.sha256})\n  manifest: ${out}\n  key:      ${manifest.signature?.keyId}`,
        );
      }

      case 'trust': {
        const file = one('KEY.pub');
        const key = parsePublicKey(readText(file), file);
        if (!key.ok) throw new CliError(key.error.code, key.error.message);
        const dir = join(dataDir(), TRUSTED_KEYS_DIR);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const target = join(dir, `${key.value.keyId.slice(0, 16)}.pub`);
        copyFileSync(file, target);
        return done(
          { keyId: key.value.keyId, file: target },
          `trusted key ${key.value.keyId}\n  stored as ${target}`,
        );
      }

      case 'import':
      case 'list':
      case 'delete': {
        const file = database();
        const opened = await openFirmware({
          dataDir: dataDir(),
          databaseFile: file,
          demo: values.demo ?? false,
          kinds: OFFLINE_KINDS,
          trustedKeyFiles: (values['trusted-key'] ?? []).map(at),
        });
        if (!opened.ok) throw new CliError(opened.error.code, opened.error.message);
        const { images } = opened.value;
        try {
          if (command === 'list') {
            if (args.length > 0) throw new CliError('usage', 'firmware list takes no arguments', 2);
            const { images: list, unreadable } = await images.list();
            const lines = list.map(
              (l) =>
                `${l.image.version.padEnd(12)} ${l.image.kinds.join(',').padEnd(20)} ${String(l.image.size).padStart(9)} B  ` +
                `${l.image.sha256.slice(0, 12)}  key ${l.image.keyId.slice(0, 12)}  running on ${l.runningOn.length}` +
                (l.runningOn.length > 0
                  ? `: ${l.runningOn.slice(0, 8).join(', ')}${l.runningOn.length > 8 ? ', …' : ''}`
                  : '') +
                (l.image.downgradeFrom !== null ? `  (downgrade from ${l.image.downgradeFrom})` : ''),
            );
            for (const u of unreadable) lines.push(`unreadable row: ${u.message}`);
            return done(
              { database: file, images: list, unreadable },
              list.length === 0 && unreadable.length === 0
                ? `no firmware images in ${file}`
                : `images in ${file}:\n${lines.join('\n')}`,
            );
          }
          if (command === 'delete') {
            if (args.length !== 1 || !/^[0-9a-f]{8,64}$/.test(args[0]!))
              throw new CliError(
                'usage',
                'firmware delete takes the SHA-256 of an image (8 to 64 hex digits)',
                2,
              );
            const prefix = args[0]!;
            const matches = (await images.list()).images.filter((l) => l.image.sha256.startsWith(prefix));
            if (matches.length === 0)
              throw new CliError('notFound', `no image's SHA-256 starts with ${prefix} in ${file}`);
            if (matches.length > 1)
              throw new CliError(
                'ambiguous',
                `${matches.length} images' SHA-256 start with ${prefix}; give more digits`,
              );
            const r = await images.remove(matches[0]!.image.sha256, 'cli');
            if (!r.ok) throw new CliError(r.error.code, r.error.message);
            return done(
              { database: file, image: r.value },
              `deleted ${r.value.version} for ${r.value.kinds.join(', ')} (SHA-256 ${r.value.sha256})`,
            );
          }
          const imageFile = one('IMAGE');
          const manifestFile =
            values.manifest !== undefined ? at(values.manifest) : `${imageFile}.manifest.json`;
          const r = await images.importImage({
            manifest: readBytes(manifestFile),
            image: readBytes(imageFile),
            actor: 'cli',
            allowDowngrade: values['allow-downgrade'] ?? false,
          });
          if (!r.ok) throw new CliError(r.error.code, r.error.message);
          const i = r.value.image;
          return done(
            { database: file, created: r.value.created, image: i },
            `${r.value.created ? 'imported' : 'already stored:'} ${i.version} for ${i.kinds.join(', ')} (${i.size} bytes, SHA-256 ${i.sha256})` +
              (i.downgradeFrom !== null
                ? `\n  a downgrade from ${i.downgradeFrom}, as asked (audited)`
                : '') +
              `\n  into ${file}`,
          );
        } finally {
          await opened.value.close();
        }
      }

      default:
        throw new CliError('usage', `unknown firmware command '${command}'\n\n${FIRMWARE_USAGE}`, 2);
    }
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

function isUsage(error: unknown): boolean {
  return String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
}

function readBytes(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (error) {
    throw new CliError('unreadable', `cannot read ${file}: ${(error as Error).message}`);
  }
}

function readText(file: string): string {
  return Buffer.from(readBytes(file)).toString('utf8');
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
