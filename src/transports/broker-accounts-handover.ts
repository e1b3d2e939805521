/**
 * New device secrets handed to the host that gives them to an external Mosquitto while it runs.
 *
 * The accounts file keeps secrets hashed, and Mosquitto's dynamic security plugin takes a new
 * client's password only in clear (`createClient`; 2.0 has no way to give it a hash). So when an
 * account is issued or rotated (by `fleetvisor broker device add|rotate`, another process), its
 * secret is also written here, one file per change (0600, in a folder of mode 0700), and the host
 * deletes the file as soon as the broker holds the new password (or finds it stale).
 *
 * The folder exists only while the host manages the broker's accounts live: the host makes it once
 * the plugin answered it, and removes it (with any secret in it) when it runs with the embedded
 * broker, which reads the accounts file itself, or when the broker does not take changes from it.
 * Without the folder nothing is written, so no secret is kept in clear for nothing. A secret waits
 * here only until the host reads it: within a second while it runs, else at its next start.
 *
 * The secret file is written before the accounts file is saved: the host never sees a new account
 * without its secret; a secret that does not match its account yet is kept {@link STALE_AFTER_MS}.
 *
 * @example
 * openHandover(dataDir);                          // the host: the broker takes changes live
 * handOver(dataDir, 'pump-7', secret);            // issueDevice: true, written
 * readHandovers(dataDir);                         // [{ id: 'pump-7', secret, file, writtenAt }]
 * closeHandover(dataDir);                         // the embedded broker: nothing to hand over
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writePrivateFile } from '../lib/private-file.js';

export const HANDOVER_DIR = 'broker-accounts-handover';

/** A secret that still does not match its account after this long belongs to a change that failed. */
export const STALE_AFTER_MS = 60_000;

export interface Handover {
  readonly id: string;
  readonly secret: string;
  readonly file: string;
  readonly writtenAt: number;
}

/** Whether the host takes new secrets (the folder exists). */
export function handoverOpen(dataDir: string): boolean {
  return existsSync(join(dataDir, HANDOVER_DIR));
}

/** Makes the folder (0700): new secrets are written to it from now on. */
export function openHandover(dataDir: string): void {
  const dir = join(dataDir, HANDOVER_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Removes the folder and every secret in it. */
export function closeHandover(dataDir: string): void {
  rmSync(join(dataDir, HANDOVER_DIR), { recursive: true, force: true });
}

/** Writes `secret` for device `id` if the folder exists; true if it did. */
export function handOver(dataDir: string, id: string, secret: string): boolean {
  if (!handoverOpen(dataDir)) return false;
  const file = join(dataDir, HANDOVER_DIR, `${id}.${Date.now()}-${randomBytes(4).toString('hex')}.json`);
  writePrivateFile(file, JSON.stringify({ id, secret }));
  return true;
}

/** The secrets waiting, oldest first; files that are not ours, or half-written, are skipped. */
export function readHandovers(dataDir: string): Handover[] {
  const dir = join(dataDir, HANDOVER_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: Handover[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue; // writePrivateFile's temporary files end in .tmp
    const file = join(dir, name);
    try {
      const body = JSON.parse(readFileSync(file, 'utf8')) as { id?: unknown; secret?: unknown };
      if (typeof body.id !== 'string' || typeof body.secret !== 'string') continue;
      found.push({ id: body.id, secret: body.secret, file, writtenAt: statSync(file).mtimeMs });
    } catch {}
  }
  return found.sort((a, b) => a.writtenAt - b.writtenAt);
}

/** Deletes one handed-over secret (gone already is fine). */
export function dropHandover(handover: Pick<Handover, 'file'>): void {
  rmSync(handover.file, { force: true });
}
