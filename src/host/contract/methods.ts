/**
 * Methods: every call's argument schema, validated at the boundary (unknown methods and bad
 * arguments are `badRequest` with the reason). Their result types are in `results.ts`.
 */

import { z } from 'zod';
import { ALARM_SEVERITIES } from './alarms.js';
import { MAX_DEVICES_IMPORT_CHARS } from './devices.js';
import { MAX_FIRMWARE_IMAGE_BYTES, MAX_FIRMWARE_MANIFEST_CHARS } from './firmware.js';

const id = z.string().min(1).max(64);
const limit = z.number().int().min(1).max(1000).default(100);
/**
 * Telemetry checks of each device's trial (docs/firmware.md §8): `METRIC<=N`, `METRIC>=N` or
 * `METRIC` (reported at least once). The host parses them (at most 16 of 100 characters) and
 * refuses a bad one `badRequest`, naming it; the bounds here only cap the request.
 */
const trialChecks = z.array(z.string().max(1000)).max(100).optional();

export const METHODS = {
  tree: z.object({}).strict(),
  devices: z
    .object({
      text: z.string().max(200).optional(),
      kind: z.string().max(64).optional(),
      state: z.string().max(200).optional(),
      tag: z.string().max(64).optional(),
      health: z.enum(['running', 'failed', 'stopped']).optional(),
      /**
       * In a cluster: `all` the fleet's devices, `own` those this instance supervises (live),
       * `remote` the others (read from the shared database, each with `remote`). Alone: `remote` is none.
       */
      scope: z.enum(['all', 'own', 'remote']).default('all'),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(10_000).default(100),
    })
    .strict(),
  device: z.object({ id }).strict(),
  /** A device's machine: state, context, the events it accepts now, the last ones it processed. */
  deviceInspect: z.object({ id }).strict(),
  /**
   * Sends an event to a device's machine by hand, with `payload` (a JSON object) as its fields;
   * audited as `device.eventSent`. Refused, with the fleet's code: `notFound`, `notRunning`,
   * `unknownEvent`, `notAccepted` (not in its current state), `badPayload`.
   */
  sendEvent: z.object({ id, event: z.string().min(1).max(64), payload: z.json().optional() }).strict(),
  telemetry: z
    .object({
      id,
      metric: z.string().min(1).max(64),
      fromMs: z.number().int(),
      toMs: z.number().int(),
      buckets: z.number().int().min(1).max(2000).default(300),
    })
    .strict()
    .refine((a) => a.toMs > a.fromMs, { message: 'toMs must be after fromMs' }),
  events: z
    .object({
      id: id.optional(),
      kind: z.string().max(100).optional(),
      fromMs: z.number().int().optional(),
      toMs: z.number().int().optional(),
      cursor: z.number().int().optional(),
      limit,
    })
    .strict(),
  commands: z.object({ id: id.optional(), cursor: z.number().int().optional(), limit }).strict(),
  health: z.object({}).strict(),
  stats: z.object({}).strict(),
  kinds: z.object({}).strict(),
  /** A page of the discovered list (at most 1,000 are kept), newest first; optionally of one kind. */
  discovered: z
    .object({
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(1000),
      kind: z.string().min(1).max(128).optional(),
    })
    .strict(),
  act: z
    .object({
      ids: z.array(id).min(1).max(10_000),
      action: z.string().min(1).max(64),
      args: z.record(z.string(), z.json()).default({}),
      /** Who asks; the transports fill in the operator. */
      actor: z.string().min(1).max(64).default('operator'),
    })
    .strict(),
  restartDevice: z.object({ id }).strict(),
  killProcess: z.object({ pid: z.number().int().min(1) }).strict(),
  restartChild: z
    .object({ supervisorPid: z.number().int().min(1), childId: z.string().min(1).max(200) })
    .strict(),
  terminateChild: z
    .object({ supervisorPid: z.number().int().min(1), childId: z.string().min(1).max(200) })
    .strict(),
  /**
   * One process as the observer shows it: by `pid`, or as the child `childId` of `supervisorPid`
   * (also when nothing runs; `pid` then names its last process, whose timeline is kept).
   */
  processInfo: z
    .object({
      pid: z.number().int().min(1).optional(),
      supervisorPid: z.number().int().min(1).optional(),
      childId: z.string().min(1).max(200).optional(),
    })
    .strict()
    .refine((a) => a.pid !== undefined || (a.supervisorPid !== undefined && a.childId !== undefined), {
      message: 'give pid, or supervisorPid and childId',
    }),
  adopt: z.object({ id }).strict(),
  /**
   * Starts adopting many discovered devices on the host (src/host/api/bulk-adopt.ts): the `ids`
   * given, or every adoptable one matching `filter` as the Discovered view filters (`text` in id,
   * convention, kind, firmware, link or reason; `except` the ids hidden there). Refused `busy`
   * while one runs, `notFound` when the filter matches none.
   */
  adoptBulk: z
    .object({
      ids: z.array(id).min(1).max(10_000).optional(),
      filter: z
        .object({
          text: z.string().max(200).default(''),
          kind: z.string().min(1).max(128).optional(),
          convention: z.string().min(1).max(64).optional(),
          except: z.array(id).max(10_000).default([]),
        })
        .strict()
        .optional(),
    })
    .strict()
    .refine((a) => (a.ids === undefined) !== (a.filter === undefined), {
      message: 'give either ids or filter',
    }),
  /** The running bulk adoption, else the last one (null before the first). */
  adoptBulkStatus: z.object({}).strict(),
  /** Cancels the running bulk adoption after the batch in flight; answers it as it ended. */
  adoptBulkCancel: z.object({}).strict(),
  cancelCommand: z.object({ commandId: z.string().min(1).max(64) }).strict(),
  setDemo: z.object({ on: z.boolean() }).strict(),
  firmwareList: z.object({}).strict(),
  /** Updates one device to a stored image (by its SHA-256); refused `notSupported` without the fw capability. */
  firmwareUpdate: z
    .object({
      deviceId: id,
      sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'sha256: 64 lowercase hex digits' }),
      /** The device's time on trial before its job confirms the image; default the image's own (its manifest's `trialSeconds`), else 10 s. */
      trialMs: z.number().int().min(1000).max(86_400_000).optional(),
      trialChecks,
    })
    .strict(),
  /** Every update job of this instance; with `deviceId`, that device's job only (in a cluster, its owner's). */
  firmwareJobs: z.object({ deviceId: id.optional() }).strict(),
  /** Cancels a device's update before its image is applied. */
  firmwareCancel: z.object({ deviceId: id }).strict(),
  /**
   * Rolls a stored image out in waves. The devices: `devices` (explicit ids), else every device of
   * the image's kinds matching `kind`, `tag` and `runningVersion`, resolved now and frozen.
   */
  rolloutCreate: z
    .object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'sha256: 64 lowercase hex digits' }),
      devices: z.array(id).min(1).max(100_000).optional(),
      kind: z.string().min(1).max(100).optional(),
      tag: z.string().min(1).max(100).optional(),
      runningVersion: z.string().min(1).max(64).optional(),
      /** Cumulative shares of the list (0–1] or device counts, with jobs at a time; default canary, 5 %, 25 %, 100 %. */
      waves: z
        .array(
          z
            .object({
              share: z.number().gt(0).max(1).optional(),
              count: z.number().int().min(1).optional(),
              maxConcurrent: z.number().int().min(1).max(1000).optional(),
            })
            .strict(),
        )
        .min(1)
        .max(20)
        .optional(),
      successThreshold: z.number().min(0).max(1).optional(),
      maxFailures: z.number().int().min(0).optional(),
      maxFailureShare: z.number().min(0).max(1).optional(),
      onFailure: z.enum(['pause', 'abort']).optional(),
      /** Between waves; default the image's own soak (its manifest's `soakSeconds`), else none. */
      soakMs: z.number().int().min(0).max(86_400_000).optional(),
      /** Each device's time on trial before its job confirms the image; default the image's own (its manifest's `trialSeconds`), else 10 s. */
      trialMs: z.number().int().min(1000).max(86_400_000).optional(),
      trialChecks,
      retries: z.number().int().min(0).max(10).optional(),
      /** Jobs start only inside it: `HH:MM-HH:MM`, after days and before `utc` if wanted (`mon-fri 02:00-04:00 utc`). */
      window: z.string().min(1).max(80).optional(),
    })
    .strict(),
  rollouts: z.object({}).strict(),
  rolloutPause: z.object({ id: z.string().min(1).max(64) }).strict(),
  rolloutResume: z.object({ id: z.string().min(1).max(64) }).strict(),
  rolloutCancel: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** Deletes a damaged rollout (state `damaged` in `rollouts`); `notDamaged` for one that reads. */
  rolloutDelete: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** The cluster this instance belongs to (docs/scale-out.md): instances, shards, lease ages. */
  cluster: z.object({}).strict(),
  /** The data folder's settings (src/host/settings.ts): the fields, saved and running values. */
  settings: z.object({}).strict(),
  /** Saves settings for the next start (validated as a start would); all of them, replacing the file. */
  settingsSave: z
    .object({
      values: z.record(z.string().max(64), z.union([z.string().max(1000), z.number(), z.boolean()])),
    })
    .strict(),
  firmwareImport: z
    .object({
      /** The manifest file's text (docs/firmware.md §1). */
      manifest: z.string().min(1).max(MAX_FIRMWARE_MANIFEST_CHARS),
      /** The image's bytes, base64 (standard alphabet, padded). */
      image: z
        .string()
        .min(4)
        .max(Math.ceil(MAX_FIRMWARE_IMAGE_BYTES / 3) * 4, {
          message: `the image is over ${MAX_FIRMWARE_IMAGE_BYTES} bytes`,
        })
        .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'not base64' })
        .refine((s) => s.length % 4 === 0, { message: 'not base64 (length not a multiple of 4)' }),
      /** Accept a version older than a stored one for the same kind; audited. */
      allowDowngrade: z.boolean().default(false),
    })
    .strict(),
  // Devices managed from the app (src/host/api/devices-admin.ts); each change audited as `device.audit`.
  /** Adds a device; its attributes are validated by its kind. `test`: a Modbus device is read once first. */
  deviceAdd: z
    .object({
      id,
      kind: z.string().min(1).max(64),
      name: z.string().min(1).max(200).optional(),
      tags: z.array(z.string().min(1).max(64)).max(50).default([]),
      attributes: z.record(z.string(), z.json()).default({}),
      test: z.boolean().default(false),
    })
    .strict(),
  /** Changes name, tags or attributes (the whole object); new attributes restart its processes. */
  deviceEdit: z
    .object({
      id,
      name: z.string().min(1).max(200).optional(),
      tags: z.array(z.string().min(1).max(64)).max(50).optional(),
      attributes: z.record(z.string(), z.json()).optional(),
    })
    .strict(),
  /** Stops and removes a device (revoking its broker account); its history stays unless `purge`. */
  deviceRemove: z.object({ id, purge: z.boolean().default(false) }).strict(),
  /** One read through the Modbus bridge with these `modbus.device` attributes, nothing saved. */
  modbusTestRead: z.object({ attributes: z.record(z.string(), z.json()) }).strict(),
  devicesExport: z
    .object({
      format: z.enum(['json', 'csv']).default('json'),
      kind: z.string().max(64).optional(),
      tag: z.string().max(64).optional(),
    })
    .strict(),
  /** Adds or updates devices from an export's text (JSON or CSV), row by row. */
  devicesImport: z
    .object({
      text: z.string().min(1).max(MAX_DEVICES_IMPORT_CHARS),
      /** Default: JSON when the text starts with `[` or `{`, CSV otherwise. */
      format: z.enum(['json', 'csv']).optional(),
    })
    .strict(),
  /** Alarms, newest first; `state` default `active` (open). With the counts the navigation shows. */
  alarms: z
    .object({
      state: z.enum(['active', 'unacked', 'shelved', 'cleared', 'all']).default('active'),
      severity: z.enum(ALARM_SEVERITIES).optional(),
      deviceId: id.optional(),
      ruleId: z.string().min(1).max(64).optional(),
      cursor: z.number().int().optional(),
      limit,
    })
    .strict(),
  alarmAck: z.object({ id: z.number().int().min(1) }).strict(),
  /** Hides an open alarm from the counts and notifications for `forMs` (0 unshelves it). */
  alarmShelve: z
    .object({
      id: z.number().int().min(1),
      forMs: z
        .number()
        .int()
        .min(0)
        .max(30 * 86_400_000),
    })
    .strict(),
  alarmRules: z.object({}).strict(),
  /** Creates or replaces a rule (by its id); validated by the rule schema (src/alarms/rules.ts), `badRequest` naming the field. */
  alarmRuleSet: z.object({ rule: z.record(z.string(), z.json()) }).strict(),
  alarmRuleDelete: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** The latest value of one metric per device (of `ids` if given), and every metric name heard (src/host/api/latest.ts). */
  latestValues: z
    .object({ metric: z.string().min(1).max(64).optional(), ids: z.array(id).min(1).max(10_000).optional() })
    .strict(),
} as const;

export type Method = keyof typeof METHODS;
export type ArgsOf<M extends Method> = z.input<(typeof METHODS)[M]>;
export type ParsedArgsOf<M extends Method> = z.output<(typeof METHODS)[M]>;
