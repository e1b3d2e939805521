/** Fresh temp folders and direct sqlite3 access (bypassing the store) for the store's tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import type { Logger } from '../../src/runtime/runtime.js';

/** A new empty folder under the OS temp folder; `cleanup` removes it. */
export function tempDir(): { dir: string; file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-store-test-'));
  return {
    dir,
    file: join(dir, 'fleetvisor.sqlite'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

type Params = (string | number | null)[];

/** Runs SQL on the file through a fresh sqlite3 connection of its own, then closes it. */
export async function rawRun(file: string, sql: string, params: Params = []): Promise<void> {
  const db = await open(file);
  try {
    await new Promise<void>((resolve, reject) => db.run(sql, params, (e) => (e ? reject(e) : resolve())));
  } finally {
    await close(db);
  }
}

export async function rawExec(file: string, sql: string): Promise<void> {
  const db = await open(file);
  try {
    await new Promise<void>((resolve, reject) => db.exec(sql, (e) => (e ? reject(e) : resolve())));
  } finally {
    await close(db);
  }
}

export async function rawAll<T>(file: string, sql: string, params: Params = []): Promise<T[]> {
  const db = await open(file);
  try {
    return await new Promise<T[]>((resolve, reject) =>
      db.all<T>(sql, params, (e, rows) => (e ? reject(e) : resolve(rows))),
    );
  } finally {
    await close(db);
  }
}

function open(file: string): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (e) => (e ? reject(e) : resolve(db)));
  });
}

function close(db: sqlite3.Database): Promise<void> {
  return new Promise((resolve, reject) => db.close((e) => (e ? reject(e) : resolve())));
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Resolves after `ms` of real time (these tests use a real SQLite file and real timers). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
