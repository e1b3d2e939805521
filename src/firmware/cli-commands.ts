/**
 * The subcommands of `fleetvisor firmware …` (src/firmware/cli.ts parses the flags, dispatches
 * here and prints a failure): one function per command, each given the parsed invocation.
 *
 * @example
 * // runFirmwareCli(['keygen', 'lab'], io) calls keygen(invocation) with args ['lab']
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { genericDevice } from '../devices/generic-device.js';
import type { KindSlot } from './check-image.js';
import type { FirmwareImages } from './firmware-images.js';
import { imageSoakSeconds } from './image-soak.js';
import { imageTrialSeconds } from './image-trial.js';
import { generateSigningKeyPair, parsePrivateKey, parsePublicKey, TRUSTED_KEYS_DIR } from './keys.js';
import {
  describeImage,
  isSoakSeconds,
  isTrialSeconds,
  MAX_SOAK_SECONDS,
  MAX_TRIAL_SECONDS,
  signManifest,
} from './manifest.js';
import { openFirmware } from './open-firmware.js';
import { parseFirmwareVersion } from './version.js';

/** A refusal with its code and exit code (1 refused or failed, 2 usage). */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The flags of `fleetvisor firmware` as parsed. */
export interface FirmwareFlags {
  readonly key?: string;
  readonly version?: string;
  readonly kind?: string[];
  readonly 'hardware-revision'?: string;
  readonly soak?: string;
  readonly trial?: string;
  readonly out?: string;
  readonly manifest?: string;
  readonly 'allow-downgrade'?: boolean;
  readonly 'data-dir'?: string;
  readonly demo?: boolean;
  readonly 'trusted-key'?: string[];
}

/** One command as the dispatcher hands it over. */
export interface FirmwareInvocation {
  readonly command: string;
  readonly args: readonly string[];
  readonly values: FirmwareFlags;
  /** A path from the command line, resolved against the working folder. */
  at(path: string): string;
  /** The one positional argument (resolved as a path), else a usage error naming `what`. */
  one(what: string): string;
  /** Prints the result (`{ ok, value }` with --json, else `text`); returns exit code 0. */
  done(value: unknown, text: string): number;
  dataDir(): string;
  database(): string;
  /** What the app running on the data folder lists; undefined: no app runs there. */
  appImages(): Promise<readonly AppImage[] | undefined>;
}

/** An image as the running app lists it: enough to know it is the same row, and what runs it. */
export interface AppImage {
  readonly sha256: string;
  readonly importedAt: number;
  readonly runningOn: readonly string[];
}

/** Kinds known without a running app: the kinds that take firmware. */
const OFFLINE_KINDS: ReadonlyMap<string, KindSlot> = new Map([[genericDevice.kind, genericDevice]]);

export function keygen(c: FirmwareInvocation): number {
  const base = c.one('NAME');
  const keyFile = `${base}.key`;
  const pubFile = `${base}.pub`;
  for (const f of [keyFile, pubFile])
    if (existsSync(f)) throw new CliError('exists', `${f} exists already; choose another NAME`);
  const pair = generateSigningKeyPair();
  writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(pubFile, pair.publicKeyPem, { flag: 'wx' });
  return c.done(
    { keyId: pair.keyId, privateKey: keyFile, publicKey: pubFile },
    `key ${pair.keyId}\n  private: ${keyFile} (keep it secret)\n  public:  ${pubFile} (trust it: fleetvisor firmware trust ${basename(pubFile)})`,
  );
}

export function sign(c: FirmwareInvocation): number {
  const { values } = c;
  const imageFile = c.one('IMAGE');
  if (values.key === undefined) throw new CliError('usage', 'sign needs --key FILE (from keygen)', 2);
  if (values.version === undefined) throw new CliError('usage', 'sign needs --version V', 2);
  const version = parseFirmwareVersion(values.version);
  if (!version.ok) throw new CliError(version.error.code, version.error.message, 2);
  if (values.kind === undefined || values.kind.length === 0)
    throw new CliError('usage', `sign needs --kind K (e.g. --kind ${genericDevice.kind})`, 2);
  const soakText = values.soak;
  const soak = soakText === undefined ? undefined : /^\d+$/.test(soakText) ? Number(soakText) : Number.NaN;
  if (soak !== undefined && !isSoakSeconds(soak))
    throw new CliError(
      'usage',
      `--soak takes whole seconds from 0 to ${MAX_SOAK_SECONDS}, got '${values.soak}'`,
      2,
    );
  const trialText = values.trial;
  const trial =
    trialText === undefined ? undefined : /^\d+$/.test(trialText) ? Number(trialText) : Number.NaN;
  if (trial !== undefined && !isTrialSeconds(trial))
    throw new CliError(
      'usage',
      `--trial takes whole seconds from 1 to ${MAX_TRIAL_SECONDS}, got '${values.trial}'`,
      2,
    );
  const key = parsePrivateKey(readText(c.at(values.key)), values.key);
  if (!key.ok) throw new CliError(key.error.code, key.error.message);
  const image = readBytes(imageFile);
  const hw = values['hardware-revision'];
  const manifest = signManifest(
    describeImage(image, {
      version: version.value,
      kinds: values.kind,
      ...(hw !== undefined ? { hardwareRevision: hw } : {}),
      ...(soak !== undefined ? { soakSeconds: soak } : {}),
      ...(trial !== undefined ? { trialSeconds: trial } : {}),
    }),
    key.value,
  );
  const out = values.out !== undefined ? c.at(values.out) : `${imageFile}.manifest.json`;
  writeFileSync(out, `${JSON.stringify(manifest, null, 2)}\n`);
  return c.done(
    { manifest: out, ...manifest },
    `signed ${version.value} for ${values.kind.join(', ')} (${image.byteLength} bytes, SHA-256 ${manifest.signed.sha256})\n  manifest: ${out}\n  key:      ${manifest.signature?.keyId}` +
      (soak !== undefined ? `\n  soak:     ${soak} s between the waves of its rollouts` : '') +
      (trial !== undefined ? `\n  trial:    ${trial} s on each device before it is confirmed` : ''),
  );
}

export function trust(c: FirmwareInvocation): number {
  const file = c.one('KEY.pub');
  const key = parsePublicKey(readText(file), file);
  if (!key.ok) throw new CliError(key.error.code, key.error.message);
  const dir = join(c.dataDir(), TRUSTED_KEYS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = join(dir, `${key.value.keyId.slice(0, 16)}.pub`);
  copyFileSync(file, target);
  return c.done(
    { keyId: key.value.keyId, file: target },
    `trusted key ${key.value.keyId}\n  stored as ${target}`,
  );
}

/**
 * Opens the data folder's firmware images for `body` and closes them after. The command's own
 * argument checks run inside, after the opening, so a folder that cannot open is reported first.
 */
export async function withImages(
  c: FirmwareInvocation,
  body: (images: FirmwareImages, databaseFile: string) => Promise<number>,
): Promise<number> {
  const file = c.database();
  const opened = await openFirmware({
    dataDir: c.dataDir(),
    databaseFile: file,
    demo: c.values.demo ?? false,
    kinds: OFFLINE_KINDS,
    trustedKeyFiles: (c.values['trusted-key'] ?? []).map(c.at),
  });
  if (!opened.ok) throw new CliError(opened.error.code, opened.error.message);
  try {
    return await body(opened.value.images, file);
  } finally {
    await opened.value.close();
  }
}

/** A listed image's declared soak, if any. */
const soakNote = (seconds: number | undefined) => (seconds === undefined ? '' : `  soak ${seconds} s`);
/** A listed image's declared trial, if any. */
const trialNote = (seconds: number | undefined) => (seconds === undefined ? '' : `  trial ${seconds} s`);

export async function list(c: FirmwareInvocation, images: FirmwareImages, file: string): Promise<number> {
  if (c.args.length > 0) throw new CliError('usage', 'firmware list takes no arguments', 2);
  const { images: stored, unreadable } = await images.list();
  // The running app knows which devices run each image wherever its fleet is (on PostgreSQL, not
  // in this file): its answer is taken for the rows it lists from this same file (same import).
  const fromApp = new Map((await c.appImages())?.map((a) => [`${a.sha256} ${a.importedAt}`, a.runningOn]));
  const listed = stored.map((l) => {
    const running = fromApp.get(`${l.image.sha256} ${l.image.importedAt}`);
    return running ? { ...l, runningOn: running } : l;
  });
  const lines = listed.map(
    (l) =>
      `${l.image.version.padEnd(12)} ${l.image.kinds.join(',').padEnd(20)} ${String(l.image.size).padStart(9)} B  ` +
      `${l.image.sha256.slice(0, 12)}  key ${l.image.keyId.slice(0, 12)}  running on ${l.runningOn.length}` +
      (l.runningOn.length > 0
        ? `: ${l.runningOn.slice(0, 8).join(', ')}${l.runningOn.length > 8 ? ', …' : ''}`
        : '') +
      (l.image.downgradeFrom !== null ? `  (downgrade from ${l.image.downgradeFrom})` : '') +
      soakNote(imageSoakSeconds(l.image)) +
      trialNote(imageTrialSeconds(l.image)),
  );
  for (const u of unreadable) lines.push(`unreadable row: ${u.message}`);
  return c.done(
    { database: file, images: listed, unreadable },
    listed.length === 0 && unreadable.length === 0
      ? `no firmware images in ${file}`
      : `images in ${file}:\n${lines.join('\n')}`,
  );
}

export async function remove(c: FirmwareInvocation, images: FirmwareImages, file: string): Promise<number> {
  const { args } = c;
  if (args.length !== 1 || !/^[0-9a-f]{8,64}$/.test(args[0]!))
    throw new CliError('usage', 'firmware delete takes the SHA-256 of an image (8 to 64 hex digits)', 2);
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
  return c.done(
    { database: file, image: r.value },
    `deleted ${r.value.version} for ${r.value.kinds.join(', ')} (SHA-256 ${r.value.sha256})`,
  );
}

export async function importImage(
  c: FirmwareInvocation,
  images: FirmwareImages,
  file: string,
): Promise<number> {
  const imageFile = c.one('IMAGE');
  const manifestFile =
    c.values.manifest !== undefined ? c.at(c.values.manifest) : `${imageFile}.manifest.json`;
  const r = await images.importImage({
    manifest: readBytes(manifestFile),
    image: readBytes(imageFile),
    actor: 'cli',
    allowDowngrade: c.values['allow-downgrade'] ?? false,
  });
  if (!r.ok) throw new CliError(r.error.code, r.error.message);
  const i = r.value.image;
  return c.done(
    { database: file, created: r.value.created, image: i },
    `${r.value.created ? 'imported' : 'already stored:'} ${i.version} for ${i.kinds.join(', ')} (${i.size} bytes, SHA-256 ${i.sha256})` +
      (i.downgradeFrom !== null ? `\n  a downgrade from ${i.downgradeFrom}, as asked (audited)` : '') +
      `\n  into ${file}`,
  );
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
