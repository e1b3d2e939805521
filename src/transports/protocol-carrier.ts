/**
 * The protocol carrier: how commands reach devices that speak our protocol (docs/protocol.md §4),
 * over whichever link the device is on now (MQTT or serial, through the link hub), and how their
 * replies settle them in the command tracker (src/devices/create-command-tracker.ts).
 *
 * - `prepare` refuses at once, with `badArgs` and the reason, a command the protocol cannot carry
 *   (an action name it refuses, args too large for one frame).
 * - Commands wait for an offline device (`queuesWhileOffline`), and one sent but unanswered when
 *   the link drops is sent again with the same `cmdId` (`resendsAfterDrop`): the device executes
 *   each `cmdId` once and repeats its reply.
 * - A reply settles the command of that device; a second reply is a duplicate; a reply for a
 *   command never sent to that device is `unknownCommand` (the hub counts it as a bad message).
 *
 * @example
 * const carrier = createProtocolCarrier({ send: (id, m) => hub.send(id, m), replyTimeoutMs: 30_000 });
 * const fleet = createFleet({ runtime, store, kinds, carrier });
 * // in the hub, on a reply:
 * settleReply(fleet.commands, deviceId, reply);
 */
import type { CommandCarrier, CommandTracker, TrackedCommand } from '../devices/command-tracker.js';
import type { CommandMessage, Message, ReplyMessage } from './protocol.js';
import { encodeMessage, ProtocolError } from './protocol.js';

export interface ProtocolCarrierOptions {
  /** Puts a message on the device's current link; false when it has none now. */
  send(deviceId: string, message: Message): boolean;
  /** How long a sent command waits for its reply; default 30 000 ms. */
  readonly replyTimeoutMs?: number;
  /** Default time a command may wait for an offline device; default the tracker's (1 h); null: forever. */
  readonly defaultTtlMs?: number | null;
  /** Largest encoded command, in bytes; default the protocol's payload limit (16 KiB). */
  readonly maxCommandBytes?: number;
}

/** The `cmd` message of a tracked command. */
export function commandMessage(c: {
  readonly commandId: string;
  readonly action: string;
  readonly args: TrackedCommand['args'];
  readonly expiresAt: number | null;
}): CommandMessage {
  return {
    v: 1,
    type: 'cmd',
    cmdId: c.commandId,
    action: c.action,
    ...(Object.keys(c.args).length > 0 ? { args: c.args } : {}),
    ...(c.expiresAt !== null ? { expiresAt: c.expiresAt } : {}),
  };
}

/** The longest command id and expiry the tracker makes, to size a command before it has them. */
const SIZING = { commandId: 'f'.repeat(32), expiresAt: 9_999_999_999_999 };

export function createProtocolCarrier(options: ProtocolCarrierOptions): CommandCarrier {
  const encodeOptions = options.maxCommandBytes ? { maxBytes: options.maxCommandBytes } : {};
  return {
    name: 'protocol',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: options.replyTimeoutMs ?? 30_000,
    ...(options.defaultTtlMs !== undefined ? { defaultTtlMs: options.defaultTtlMs } : {}),

    prepare(command) {
      try {
        encodeMessage(
          commandMessage({ ...SIZING, action: command.action, args: command.args }),
          encodeOptions,
        );
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        return { ok: false, error: { code: 'badArgs', message: `command not sendable: ${error.message}` } };
      }
      return { ok: true, value: command.args };
    },

    dispatch(command) {
      return options.send(command.deviceId, commandMessage(command)) ? 'sent' : 'notReachable';
    },
  };
}

/** A device's reply: settles its command (`completed`), or says why not. */
export function settleReply(
  tracker: Pick<CommandTracker, 'settle'>,
  deviceId: string,
  reply: ReplyMessage,
): 'completed' | 'duplicate' | 'unknownCommand' {
  return tracker.settle(
    reply.cmdId,
    reply.ok
      ? reply.result !== undefined
        ? { ok: true, result: reply.result }
        : { ok: true }
      : { ok: false, error: { code: reply.error.code, message: reply.error.message } },
    deviceId,
  );
}
