/**
 * The binary `fw.chunk` frame of the serial line (docs/protocol.md §7.1): the image bytes as
 * they are, inside the usual COBS + CRC-32 frame, instead of base64 inside JSON. Over MQTT the
 * same payload, unframed, is the `fw` topic's message ({@link encodeFwChunkPayload}).
 *
 * A device that announces the capability `fw.binary` in its `hello` gets every `fw.chunk` as
 * this frame; any other device gets the JSON message as before. The device answers with the same
 * JSON `fw.ack` either way. The payload of a frame says which it holds by its first byte: JSON
 * starts with `{` (or a BOM or whitespace); a binary frame starts with its type byte, a control
 * character, and 0x01 is the `fw.chunk` frame:
 *
 *   0x01 ‖ idLen (1 byte) ‖ transferId (idLen ASCII bytes) ‖ offset (uint32 LE) ‖ length (uint16 LE) ‖ data
 *
 * With 4 KiB chunks that is about 1.01 wire bytes per image byte (the header, the CRC, COBS and
 * the delimiters), against 1.37 for the JSON chunk; and neither end runs JSON or base64 on the
 * image.
 *
 * @example
 * if (hello.capabilities.includes(FW_BINARY_CAPABILITY)) port.write(encodeFwChunkFrame(chunk));
 * const r = decodeDevicePayload(payload); // a binary frame or a JSON message, as a Message
 * if (r.ok && r.value.type === 'fw.chunk') write(r.value.offset, r.value.data);
 */
import { ID_MAX_CHARS, isIdChar } from '../devices/device-id.js';
import { encodeFrameParts } from './framing.js';
import type { DecodeError, DecodeOptions, FwChunkMessage, Message, Result } from './protocol.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, decodeMessage, LIMITS, ProtocolError } from './protocol.js';

/** The capability a device lists in its `hello` to take `fw.chunk` as a binary frame. */
export const FW_BINARY_CAPABILITY = 'fw.binary';

/** First payload byte of the binary `fw.chunk` frame. */
export const FW_CHUNK_FRAME_TYPE = 0x01;

/** Bytes of the `fw.chunk` frame's header besides the transfer id: type, idLen, offset, length. */
export const FW_CHUNK_HEADER_BYTES = 8;

/**
 * Whether a frame's payload is a binary frame rather than JSON: its first byte is a control
 * character other than the JSON whitespace (tab, LF, CR). 0x01 is the only type defined; the
 * others are reserved and refused as `unknownType`.
 */
export function isBinaryPayload(payload: Uint8Array): boolean {
  const b = payload[0];
  return b !== undefined && b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d;
}

function badChunk(field: string, message: string): never {
  throw new ProtocolError('badField', `fw.chunk frame: ${message}`, field);
}

/**
 * The binary `fw.chunk` payload's header (type, idLen, transferId, offset, length), after the
 * checks {@link encodeFwChunkFrame} names.
 */
function chunkHeader(msg: FwChunkMessage, options: DecodeOptions): Uint8Array {
  const id = msg.transferId;
  if (typeof id !== 'string' || id.length === 0 || id.length > ID_MAX_CHARS)
    badChunk('transferId', `transferId must be 1…${ID_MAX_CHARS} characters`);
  const n = id.length;
  const header = new Uint8Array(FW_CHUNK_HEADER_BYTES + n);
  header[0] = FW_CHUNK_FRAME_TYPE;
  header[1] = n;
  for (let i = 0; i < n; i++) {
    const c = id.charCodeAt(i);
    if (!isIdChar(c)) badChunk('transferId', `transferId may hold only A-Z a-z 0-9 _ -`);
    header[2 + i] = c;
  }
  const { offset, data } = msg;
  if (!(Number.isInteger(offset) && offset >= 0 && offset <= 0xffffffff))
    badChunk('offset', `offset must be a uint32, got ${String(offset)}`);
  if (!(data instanceof Uint8Array) || data.length === 0 || data.length > LIMITS.chunkBytes)
    badChunk('data', `data must be 1…${LIMITS.chunkBytes} bytes`);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (header.length + data.length > maxBytes)
    throw new ProtocolError(
      'tooLarge',
      `fw.chunk frame: payload has ${header.length + data.length} bytes; at most ${maxBytes}`,
    );
  const view = new DataView(header.buffer);
  view.setUint32(2 + n, offset, true);
  view.setUint16(6 + n, data.length, true);
  return header;
}

/**
 * Encodes a `fw.chunk` message as one binary frame, ready for the line (leading and trailing
 * 0x00 included). Throws {@link ProtocolError} `badField` naming the field for a message the
 * device would refuse: a transfer id that is not an id, an offset that is not a uint32, data of
 * 0 or more than {@link LIMITS.chunkBytes} bytes; `tooLarge` for a payload (header and data) over
 * `maxBytes` (default 16 KiB, as for JSON messages).
 *
 * @example
 * port.write(encodeFwChunkFrame({ v: 1, type: 'fw.chunk', transferId: 'fw-9', offset: 8192, data }));
 */
export function encodeFwChunkFrame(msg: FwChunkMessage, options: DecodeOptions = {}): Uint8Array {
  return encodeFrameParts([chunkHeader(msg, options), msg.data]);
}

/**
 * The same binary `fw.chunk` payload as one buffer, without the serial framing: what an MQTT
 * device that lists `fw.binary` gets on its `fw` topic (MQTT frames the message and TCP checks
 * it). Throws as {@link encodeFwChunkFrame}.
 *
 * @example
 * client.publish(`fleetvisor/v1/${id}/fw`, encodeFwChunkPayload(chunk), { qos: 1 });
 */
export function encodeFwChunkPayload(msg: FwChunkMessage, options: DecodeOptions = {}): Buffer {
  const header = chunkHeader(msg, options);
  const payload = Buffer.allocUnsafe(header.length + msg.data.length);
  payload.set(header, 0);
  payload.set(msg.data, header.length);
  return payload;
}

function refused(
  code: DecodeError['code'],
  message: string,
  field?: string,
): { ok: false; error: DecodeError } {
  const text = `fw.chunk frame: ${message}`;
  return { ok: false, error: field === undefined ? { code, message: text } : { code, message: text, field } };
}

/**
 * Decodes a binary frame's payload (CRC already checked) into the `fw.chunk` message it
 * carries; `data` is a view into `payload`. Never throws for any bytes. Errors:
 * `tooLarge` (over `maxBytes`), `unknownType` (a reserved type byte), `badField` naming
 * `transferId` (bad length or characters), `length` (the frame is cut short, holds more than its
 * header says, or says 0 or more than 8192 bytes).
 *
 * @example
 * decodeFwChunkPayload(payload); // { ok: true, value: { v: 1, type: 'fw.chunk', transferId, offset, data } }
 */
export function decodeFwChunkPayload(
  payload: Uint8Array,
  options: DecodeOptions = {},
): Result<FwChunkMessage, DecodeError> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const total = payload.length;
  if (total > maxBytes) return refused('tooLarge', `payload has ${total} bytes; at most ${maxBytes}`);
  if (payload[0] !== FW_CHUNK_FRAME_TYPE) {
    const type = `0x${(payload[0] ?? 0).toString(16).padStart(2, '0')}`;
    return refused('unknownType', `frame type ${type} is not defined (0x01 is fw.chunk)`, 'type');
  }
  const n = payload[1] ?? 0;
  if (n === 0 || n > ID_MAX_CHARS)
    return refused('badField', `transferId length must be 1…${ID_MAX_CHARS}, got ${n}`, 'transferId');
  const dataAt = FW_CHUNK_HEADER_BYTES + n;
  if (total < dataAt)
    return refused('badField', `cut short: ${total} bytes, the header alone takes ${dataAt}`, 'length');
  let transferId = '';
  for (let i = 2; i < 2 + n; i++) {
    const c = payload[i]!;
    if (!isIdChar(c))
      return refused(
        'badField',
        `transferId byte 0x${c.toString(16)} is not one of A-Z a-z 0-9 _ -`,
        'transferId',
      );
    transferId += String.fromCharCode(c);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const offset = view.getUint32(2 + n, true);
  const length = view.getUint16(6 + n, true);
  if (length === 0 || length > LIMITS.chunkBytes)
    return refused('badField', `length must be 1…${LIMITS.chunkBytes}, got ${length}`, 'length');
  if (total - dataAt !== length)
    return refused('badField', `length says ${length} bytes, the frame holds ${total - dataAt}`, 'length');
  return { ok: true, value: { v: 1, type: 'fw.chunk', transferId, offset, data: payload.subarray(dataAt) } };
}

/**
 * Decodes what a device that lists `fw.binary` receives, binary or JSON ({@link isBinaryPayload}):
 * one serial frame's payload, or one MQTT publish's on the `fw` topic; never throws for any bytes.
 * Errors as `decodeMessage`, and those of {@link decodeFwChunkPayload}.
 *
 * @example
 * const r = decodeDevicePayload(payload, { maxBytes: 16 * 1024 });
 * if (r.ok) deliver(r.value);
 */
export function decodeDevicePayload(
  payload: Uint8Array,
  options: DecodeOptions = {},
): Result<Message, DecodeError> {
  return isBinaryPayload(payload) ? decodeFwChunkPayload(payload, options) : decodeMessage(payload, options);
}
