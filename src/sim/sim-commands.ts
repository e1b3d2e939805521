/**
 * The simulated device's commands (protocol §4): the reply cache that executes each `cmdId` at
 * most once, expiry, and one planner per action.
 *
 * A planner only reads the command (and the config it merges into): it returns the reply and the
 * effect the device carries out (sim-device.ts), so argument checks and their error messages are
 * testable without a device, a link or a timer.
 *
 * @example
 * planCommand({ v: 1, type: 'cmd', cmdId: 'c1', action: 'setInterval', args: { ms: 500 } }, {});
 * // → { reply: { v: 1, type: 'reply', cmdId: 'c1', ok: true, result: { ms: 500 } },
 * //     effect: { kind: 'setInterval', ms: 500 } }
 */
import type { CommandMessage, JsonObject, JsonValue, ReplyMessage } from '../transports/protocol.js';
import { encodeMessage } from '../transports/protocol.js';

/** Lowest and highest telemetry interval (`telemetryIntervalMs`, the `setInterval` command). */
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;
/** Longest `identify` accepted, in seconds. */
export const MAX_IDENTIFY_SECONDS = 3600;
/** How many replies the device keeps for repeated `cmdId`s (protocol §4: at least 32). */
export const REPLY_CACHE_SIZE = 32;

/** Actions the simulator implements (plus `fw`, the firmware transfer). */
export const SIM_ACTIONS = ['ping', 'hello', 'reboot', 'identify', 'setInterval', 'setConfig'] as const;

/** The executed-counter map is capped so a long simulation does not grow without bound. */
const MAX_EXECUTED_ENTRIES = 10_000;

/** What the device does for a command it accepted, besides replying. */
export type CommandEffect =
  /** Send hello now, before the reply. */
  | { readonly kind: 'hello' }
  /** Reboot once the reply went. */
  | { readonly kind: 'reboot' }
  /** Blink for `ms`; the `identify` event follows the reply. */
  | { readonly kind: 'identify'; readonly seconds: number; readonly ms: number }
  | { readonly kind: 'setInterval'; readonly ms: number }
  | { readonly kind: 'setConfig'; readonly config: JsonObject };

export interface CommandPlan {
  readonly reply: ReplyMessage;
  readonly effect?: CommandEffect;
}

function fail(cmdId: string, code: string, message: string): ReplyMessage {
  return { v: 1, type: 'reply', cmdId, ok: false, error: { code, message } };
}

function ok(cmdId: string, result?: JsonValue): ReplyMessage {
  return result === undefined
    ? { v: 1, type: 'reply', cmdId, ok: true }
    : { v: 1, type: 'reply', cmdId, ok: true, result };
}

function show(x: unknown): string {
  if (x === undefined) return 'nothing';
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * Replies kept per `cmdId` (the last {@link REPLY_CACHE_SIZE}), and how many times each was
 * really executed. Both live "in flash": a command re-sent after the reboot it caused is
 * answered from here, not run again.
 */
export class ReplyCache {
  /** How many times each `cmdId` was really executed (duplicates and expired commands don't count). */
  readonly executed = new Map<string, number>();
  private readonly replies = new Map<string, ReplyMessage>();

  get(cmdId: string): ReplyMessage | undefined {
    return this.replies.get(cmdId);
  }

  remember(reply: ReplyMessage): void {
    this.replies.set(reply.cmdId, reply);
    while (this.replies.size > REPLY_CACHE_SIZE) {
      const oldest = this.replies.keys().next().value;
      if (oldest === undefined) break;
      this.replies.delete(oldest);
    }
  }

  countExecution(cmdId: string): void {
    this.executed.set(cmdId, (this.executed.get(cmdId) ?? 0) + 1);
    if (this.executed.size > MAX_EXECUTED_ENTRIES) {
      const oldest = this.executed.keys().next().value;
      if (oldest !== undefined) this.executed.delete(oldest);
    }
  }
}

/** The reply to a command whose `expiresAt` passed on the device's clock (`nowMs`). */
export function expiredReply(cmdId: string, expiresAt: number, nowMs: number): ReplyMessage {
  return fail(
    cmdId,
    'expired',
    `command expired at ${new Date(expiresAt).toISOString()}; device clock is ${new Date(nowMs).toISOString()}`,
  );
}

function planIdentify(cmdId: string, args: JsonObject | undefined): CommandPlan {
  const raw = args?.seconds;
  const seconds = raw === undefined ? 5 : raw;
  if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= MAX_IDENTIFY_SECONDS)) {
    return {
      reply: fail(
        cmdId,
        'badArgs',
        `args.seconds must be a number of seconds, 0 < seconds ≤ ${MAX_IDENTIFY_SECONDS}; got ${show(raw)}`,
      ),
    };
  }
  return {
    reply: ok(cmdId, { seconds }),
    effect: { kind: 'identify', seconds, ms: Math.round(seconds * 1000) },
  };
}

function planSetInterval(cmdId: string, args: JsonObject | undefined): CommandPlan {
  const ms = args?.ms;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
    return {
      reply: fail(
        cmdId,
        'badArgs',
        `args.ms must be an integer ${MIN_INTERVAL_MS}…${MAX_INTERVAL_MS} (milliseconds), got ${show(ms)}`,
      ),
    };
  }
  return { reply: ok(cmdId, { ms }), effect: { kind: 'setInterval', ms } };
}

function planSetConfig(cmdId: string, args: JsonObject | undefined, config: JsonObject): CommandPlan {
  if (args === undefined) {
    return { reply: fail(cmdId, 'badArgs', 'args must be an object of settings to merge into config') };
  }
  const next: JsonObject = { ...config, ...args };
  const reply = ok(cmdId, next);
  try {
    encodeMessage(reply);
  } catch (err) {
    return {
      reply: fail(
        cmdId,
        'badArgs',
        `args: the merged config does not fit in a reply (${err instanceof Error ? err.message.slice(0, 200) : 'invalid'})`,
      ),
    };
  }
  return { reply, effect: { kind: 'setConfig', config: next } };
}

/** The reply to a command about to be executed, and what the device must do for it. */
export function planCommand(cmd: CommandMessage, config: JsonObject): CommandPlan {
  const { cmdId, args } = cmd;
  switch (cmd.action) {
    case 'ping':
      return { reply: ok(cmdId) };
    case 'hello':
      return { reply: ok(cmdId), effect: { kind: 'hello' } };
    case 'reboot':
      return { reply: ok(cmdId), effect: { kind: 'reboot' } };
    case 'identify':
      return planIdentify(cmdId, args);
    case 'setInterval':
      return planSetInterval(cmdId, args);
    case 'setConfig':
      return planSetConfig(cmdId, args, config);
    default:
      return {
        reply: fail(
          cmdId,
          'unknownAction',
          `unknown action '${cmd.action}'; this device supports ${SIM_ACTIONS.join(', ')}`,
        ),
      };
  }
}
