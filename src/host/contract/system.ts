/**
 * The host as a whole: its event log, telemetry buckets, health checks, live figures (with the
 * embedded broker's refusals) and the Settings view.
 */

import type { Json } from './envelope.js';

export interface EventView {
  readonly seq: number;
  readonly at: number;
  readonly deviceId: string | null;
  readonly kind: string;
  readonly data: Json;
}

export interface Bucket {
  readonly start: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly avg: number;
}

export interface HealthItem {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SystemStats {
  readonly at: number;
  readonly devices: { readonly total: number; readonly online: number; readonly failed: number };
  readonly processes: number;
  /** Messages from devices per second (last 10 s): telemetry and signs of life, every convention. */
  readonly ingestRate: number;
  readonly restarts: number;
  readonly commandLatencyMs: {
    readonly p50: number | null;
    readonly p95: number | null;
    readonly p99: number | null;
  };
  readonly queues: { readonly [name: string]: number };
  readonly broker: {
    readonly url: string | null;
    readonly connected: boolean;
    readonly embedded: boolean;
    /** What the embedded broker refused strangers and devices (connect, publish, subscribe); zeros for an external broker. */
    readonly refused: {
      readonly connect: number;
      readonly publish: number;
      readonly subscribe: number;
      /**
       * The clients refused most recently, newest first (at most 20), each with its counts and its
       * last reason (`badCredentials`, an ACL message, …); absent for an external broker.
       */
      readonly clients?: readonly BrokerRefusedClient[];
    };
  };
  /**
   * Device messages that reached the host and were not stored, by cause (the store's code: e.g.
   * `overloaded`, `writeFailed`), since the host started. Zero is the promise; anything else is
   * data loss, shown as such.
   */
  readonly dataLoss: { readonly total: number; readonly byCause: { readonly [cause: string]: number } };
  /**
   * Telemetry points and device events not stored again because the store had them (device, boot,
   * seq): at most once.
   */
  readonly duplicatesIgnored: number;
  readonly heapUsedBytes: number;
}

/** One client the embedded broker refused (its client id and username as the client sent them, cut at 128 characters). */
export interface BrokerRefusedClient {
  readonly clientId: string;
  readonly username: string | null;
  readonly connect: number;
  readonly publish: number;
  readonly subscribe: number;
  readonly lastAt: number;
  readonly lastReason: string;
}

/** The Settings view: what can be set, what the file holds, what runs now, what a restart changes. */
export interface SettingsView {
  readonly file: string;
  readonly fields: readonly {
    readonly name: string;
    readonly label: string;
    readonly group: string;
    readonly kind: 'text' | 'number' | 'boolean' | 'choice';
    readonly choices: readonly string[] | null;
    readonly help: string;
  }[];
  readonly saved: Readonly<Record<string, string | number | boolean>>;
  readonly running: Readonly<Record<string, string | number | boolean>>;
  /** Set by --config, the environment or the command line: they win over the file. */
  readonly overridden: readonly string[];
  /** Saved values that differ from the running ones: a restart applies them. */
  readonly restartNeeded: readonly string[];
}
