/**
 * Device protocol v1, per-type validation: turns a parsed envelope of a known type into a typed
 * message, field by field, or throws {@link BadField} naming the first bad one.
 *
 * Internal to the codec (decodeMessage in protocol-codec.ts); this is the hot path of every
 * telemetry message, so it builds plain object literals and keeps a clean `values` as parsed.
 *
 * @example
 * const msg = readFields('heartbeat', { v: 1, type: 'heartbeat', boot: 3, uptimeMs: 1000 });
 * // { v: 1, type: 'heartbeat', boot: 3, uptimeMs: 1000 }
 */

import { parseDeviceId } from '../devices/device-id.js';
import type { Obj } from './protocol-fields.js';
import {
  BadField,
  checkName,
  checkVersion,
  cleanJson,
  FORBIDDEN_KEYS,
  isName,
  isObject,
  oneOf,
  optObject,
  own,
  path,
  reqId,
  reqMs,
  reqName,
  reqUint32,
  reqWireError,
  show,
} from './protocol-fields.js';
import type {
  CommandMessage,
  EventMessage,
  FwAckMessage,
  FwStep,
  HelloMessage,
  Message,
  MessageType,
  Severity,
  Slot,
} from './protocol-types.js';
import { LIMITS } from './protocol-types.js';

const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error'];
const FW_STEPS: readonly FwStep[] = ['begin', 'chunk', 'verify', 'apply', 'confirm', 'rollback'];

function slotVersion(o: Obj, key: Slot, at: string): string | null {
  const x = own(o, key);
  if (x === null) return null;
  checkVersion(x, path(at, key));
  return x;
}

/**
 * Padded standard base64 (RFC 4648 §4) of 1…`maxBytes` bytes, decoded; undefined for anything else
 * (other characters, base64url, whitespace, missing padding, non-zero padding bits). Node's Buffer
 * codec skips what it cannot read, so the text is taken only if encoding its bytes gives it back:
 * two native passes, where the former regex over the text cost ~15× as much per 4 KiB chunk.
 */
function fromBase64(s: string, maxBytes: number): Uint8Array | undefined {
  if (s.length === 0 || s.length % 4 !== 0 || s.length > Math.ceil(maxBytes / 3) * 4) return undefined;
  const b = Buffer.from(s, 'base64');
  if (b.byteLength > maxBytes || b.toString('base64') !== s) return undefined;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function readHello(o: Obj): HelloMessage {
  const rawId = own(o, 'deviceId');
  if (typeof rawId !== 'string')
    throw new BadField('deviceId', `deviceId must be a string, got ${show(rawId)}`);
  const id = parseDeviceId(rawId);
  if (!id.ok) throw new BadField('deviceId', id.error.message);
  const kind = reqName(o, 'kind', '');
  const boot = reqUint32(o, 'boot', '');
  const fw = own(o, 'firmware');
  if (!isObject(fw)) throw new BadField('firmware', `firmware must be an object, got ${show(fw)}`);
  const version = own(fw, 'version');
  checkVersion(version, 'firmware.version');
  const slot = oneOf<Slot>(fw, 'slot', 'firmware', ['A', 'B']);
  const confirmed = own(fw, 'confirmed');
  if (typeof confirmed !== 'boolean') {
    throw new BadField(
      'firmware.confirmed',
      `firmware.confirmed must be true or false, got ${show(confirmed)}`,
    );
  }
  const slots = own(fw, 'slots');
  if (!isObject(slots)) throw new BadField('firmware.slots', `firmware.slots must be an object { A, B }`);
  const A = slotVersion(slots, 'A', 'firmware.slots');
  const B = slotVersion(slots, 'B', 'firmware.slots');
  if ((slot === 'A' ? A : B) !== version) {
    throw new BadField(
      `firmware.slots.${slot}`,
      `firmware.slots.${slot} must equal firmware.version (the running image)`,
    );
  }
  const caps = own(o, 'capabilities');
  if (!Array.isArray(caps))
    throw new BadField('capabilities', `capabilities must be an array, got ${show(caps)}`);
  if (caps.length > LIMITS.capabilities) {
    throw new BadField('capabilities', `capabilities must have at most ${LIMITS.capabilities} entries`);
  }
  const capabilities: string[] = [];
  for (let i = 0; i < caps.length; i++) {
    const c: unknown = caps[i];
    checkName(c, `capabilities[${i}]`);
    capabilities.push(c);
  }
  return {
    v: 1,
    type: 'hello',
    deviceId: id.value,
    kind,
    boot,
    firmware: { version, slot, confirmed, slots: { A, B } },
    capabilities,
  };
}

function readValues(o: Obj): Record<string, number> {
  const raw = own(o, 'values');
  if (!isObject(raw))
    throw new BadField('values', `values must be an object of metric → number, got ${show(raw)}`);
  // The parsed object itself is kept when it is already clean (the common case: one object less
  // per message); a forbidden key or a -0 makes a clean copy.
  let clean = true;
  let count = 0;
  for (const key in raw) {
    if (!Object.hasOwn(raw, key)) continue;
    if (FORBIDDEN_KEYS.has(key)) {
      clean = false;
      continue;
    }
    if (!isName(key)) checkName(key, `values[${JSON.stringify(key.slice(0, 40))}]`);
    const x = raw[key];
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new BadField(`values.${key}`, `values.${key} must be a finite number, got ${show(x)}`);
    }
    if (++count > LIMITS.metrics)
      throw new BadField('values', `values must have at most ${LIMITS.metrics} metrics`);
    if (Object.is(x, -0)) clean = false;
  }
  if (clean && Object.getPrototypeOf(raw) === Object.prototype) return raw as Record<string, number>;
  const out: Record<string, number> = {};
  for (const key of Object.keys(raw)) if (!FORBIDDEN_KEYS.has(key)) out[key] = (raw[key] as number) + 0;
  return out;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// Plain object literals, not spreads: this is the hot path of every telemetry message.
export function readFields(type: MessageType, o: Obj): Message {
  switch (type) {
    case 'hello':
      return readHello(o);
    case 'status':
      return {
        v: 1,
        type,
        state: oneOf(o, 'state', '', ['online', 'offline'] as const),
        boot: reqUint32(o, 'boot', ''),
        conn: reqUint32(o, 'conn', ''),
      };
    case 'telemetry':
      return {
        v: 1,
        type,
        boot: reqUint32(o, 'boot', ''),
        seq: reqUint32(o, 'seq', ''),
        ts: reqMs(o, 'ts', ''),
        values: readValues(o),
      };
    case 'heartbeat':
      return { v: 1, type, boot: reqUint32(o, 'boot', ''), uptimeMs: reqMs(o, 'uptimeMs', '') };
    case 'event': {
      const msg: Mutable<EventMessage> = {
        v: 1,
        type,
        boot: reqUint32(o, 'boot', ''),
        seq: reqUint32(o, 'seq', ''),
        ts: reqMs(o, 'ts', ''),
        name: reqName(o, 'name', ''),
      };
      if (own(o, 'severity') !== undefined) msg.severity = oneOf(o, 'severity', '', SEVERITIES);
      const data = optObject(o, 'data', '');
      if (data !== undefined) msg.data = data;
      return msg;
    }
    case 'cmd': {
      const msg: Mutable<CommandMessage> = {
        v: 1,
        type,
        cmdId: reqId(o, 'cmdId', ''),
        action: reqName(o, 'action', ''),
      };
      const args = optObject(o, 'args', '');
      if (args !== undefined) msg.args = args;
      if (own(o, 'expiresAt') !== undefined) msg.expiresAt = reqMs(o, 'expiresAt', '');
      return msg;
    }
    case 'reply': {
      const cmdId = reqId(o, 'cmdId', '');
      const ok = own(o, 'ok');
      if (ok === true) {
        const result = own(o, 'result');
        return result === undefined
          ? { v: 1, type, cmdId, ok }
          : { v: 1, type, cmdId, ok, result: cleanJson(result, 'result') };
      }
      if (ok === false) return { v: 1, type, cmdId, ok, error: reqWireError(o, 'error', '') };
      throw new BadField('ok', `ok must be true or false, got ${show(ok)}`);
    }
    case 'fw.begin': {
      const transferId = reqId(o, 'transferId', '');
      const version = own(o, 'version');
      checkVersion(version, 'version');
      const size = reqUint32(o, 'size', '');
      if (size === 0) throw new BadField('size', 'size must be at least 1 byte');
      const sha256 = own(o, 'sha256');
      if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
        throw new BadField('sha256', `sha256 must be 64 lowercase hex digits, got ${show(sha256)}`);
      }
      const chunkBytes = reqUint32(o, 'chunkBytes', '');
      if (chunkBytes === 0 || chunkBytes > LIMITS.chunkBytes) {
        throw new BadField('chunkBytes', `chunkBytes must be 1…${LIMITS.chunkBytes}, got ${chunkBytes}`);
      }
      return { v: 1, type, transferId, version, size, sha256, chunkBytes };
    }
    case 'fw.chunk': {
      const transferId = reqId(o, 'transferId', '');
      const offset = reqUint32(o, 'offset', '');
      const raw = own(o, 'data');
      const data = typeof raw === 'string' ? fromBase64(raw, LIMITS.chunkBytes) : undefined;
      if (data === undefined) {
        throw new BadField('data', `data must be padded base64 of 1…${LIMITS.chunkBytes} bytes`);
      }
      return { v: 1, type, transferId, offset, data };
    }
    case 'fw.verify':
    case 'fw.apply':
    case 'fw.confirm':
    case 'fw.rollback':
      return { v: 1, type, transferId: reqId(o, 'transferId', '') };
    case 'fw.ack': {
      const msg: Mutable<FwAckMessage> = {
        v: 1,
        type,
        transferId: reqId(o, 'transferId', ''),
        step: oneOf(o, 'step', '', FW_STEPS),
        offset: reqUint32(o, 'offset', ''),
      };
      if (own(o, 'error') !== undefined) msg.error = reqWireError(o, 'error', '');
      return msg;
    }
  }
}
