/**
 * What can go wrong on a serial link, as values: input the host could not use
 * ({@link SerialLinkError}, the link carries on), a refused send ({@link SerialSendError}), and
 * the error of the link's error exit ({@link SerialLinkExitError}, with a `code`).
 *
 * @example
 * link.onExit((reason) => {
 *   if (reason.type === 'error' && reason.error instanceof SerialLinkExitError && reason.error.code === 'vanished') replugLater();
 * });
 */
import type { FrameErrorCode } from './framing.js';
import type { DecodeErrorCode } from './protocol.js';

export type SerialLinkErrorCode = FrameErrorCode | DecodeErrorCode | 'wrongDirection' | 'deviceMismatch';

/**
 * Something the device sent that the host could not use:
 * - a frame error (`crcMismatch`, `tooLong`, `badCobs`, `empty`), with `discardedBytes`;
 * - a message error (`notJson`, `badField`, …, see `decodeMessage`), with `field` when known;
 * - `wrongDirection`: a host → device type (`cmd`, `fw.*`) came from the device (an echoing line?);
 * - `deviceMismatch`: a `hello` with another device id than the one this link identified (the link exits).
 */
export interface SerialLinkError {
  readonly code: SerialLinkErrorCode;
  readonly message: string;
  readonly field?: string;
  readonly discardedBytes?: number;
}

/**
 * Why {@link SerialLink.send} refused a message:
 * - `wrongDirection`: a device → host type (the host only sends `cmd` and `fw.*`);
 * - `badMessage`: the message does not encode to valid protocol v1 (or is over `maxPayloadBytes`);
 * - `closed`: the link is stopping or has exited.
 */
export interface SerialSendError {
  readonly code: 'wrongDirection' | 'badMessage' | 'closed';
  readonly message: string;
}

export type SerialLinkExitCode =
  | 'vanished'
  | 'closed'
  | 'ioError'
  | 'writeFailed'
  | 'writeTimeout'
  | 'silent'
  | 'deviceMismatch';

/** The error of a link's error exit; `message` starts with the code (`silent: …`). */
export class SerialLinkExitError extends Error {
  readonly code: SerialLinkExitCode;
  readonly path: string;
  constructor(code: SerialLinkExitCode, path: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'SerialLinkExitError';
    this.code = code;
    this.path = path;
  }
}
