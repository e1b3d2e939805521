/**
 * The Modbus bus's public vocabulary (modbus-bus.ts): a slave's configuration, the bus's options
 * and hooks, what a write or a one-off read answers, the faults it reports and its stats. Types
 * only; modbus-bus.ts re-exports them, so importers keep importing from there.
 *
 * @example
 * import type { SlaveConfig, WriteOutcome } from './modbus-bus.js';
 * const slave: SlaveConfig = { deviceId: 'boiler-1', unitId: 3, registers, pollMs: 1000, timeoutMs: 500, retries: 1 };
 * const outcome: WriteOutcome = await bus.write('boiler-1', { fc: 6, address: 10, value: 215 });
 */
import type { ReconnectOptions } from '../../transports/reconnect.js';
import type { RegisterDef } from './modbus-kind.js';

export interface LineSettings {
  readonly baudRate: number;
  readonly parity: 'none' | 'even' | 'odd';
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

/** One slave on the bus, as the bridge configures it (from a `modbus.device`'s attributes). */
export interface SlaveConfig {
  readonly deviceId: string;
  readonly unitId: number;
  readonly registers: readonly RegisterDef[];
  readonly pollMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
}

export type FaultCode = 'timeout' | 'exception' | 'crc' | 'badFrame';

/** A failed request, for the device's event log. */
export interface ModbusFault {
  readonly code: FaultCode;
  readonly message: string;
  readonly operation: 'read' | 'write';
  readonly functionCode: number;
  readonly address: number;
  readonly count: number;
  readonly registers: readonly string[];
  /** For `exception`: the Modbus exception code (2: illegal data address …). */
  readonly exceptionCode?: number;
}

export interface SlaveCounters {
  requests: number;
  replies: number;
  timeouts: number;
  exceptions: number;
  crcErrors: number;
  badFrames: number;
  writes: number;
  writeFailures: number;
  /** Completed poll cycles (values reported). */
  cycles: number;
}

export type WriteOutcome =
  | { readonly ok: true; readonly attempts: number }
  | {
      readonly ok: false;
      /** `offline`: the slave is down (not sent); `portDown`, `stopped`, `removed`: not (surely) done. */
      readonly code: FaultCode | 'offline' | 'portDown' | 'stopped' | 'removed';
      readonly message: string;
      readonly exceptionCode?: number;
    };

/** A read of registers of a slave that need not be on the bus (a test before adding a device). */
export interface ReadOnceRequest {
  readonly unitId: number;
  readonly registers: readonly RegisterDef[];
  readonly timeoutMs: number;
}

export type ReadOnceOutcome =
  | { readonly ok: true; readonly values: Record<string, number> }
  | {
      readonly ok: false;
      readonly code: FaultCode | 'portDown' | 'stopped';
      readonly message: string;
      readonly exceptionCode?: number;
    };

export interface ModbusBusHooks {
  /** The slave's first good reply (or its first since it went down). */
  onSlaveUp(deviceId: string, via: string): void;
  /** `retries + 1` timeouts in a row, or the port went away. */
  onSlaveDown(deviceId: string, reason: string): void;
  /** The values of one poll cycle (each register by name, converted and scaled). */
  onValues(deviceId: string, values: Record<string, number>): void;
  onFault(deviceId: string, fault: ModbusFault): void;
}

export interface ModbusBusOptions {
  readonly path: string;
  readonly line: LineSettings;
  readonly slaves: readonly SlaveConfig[];
  readonly hooks: ModbusBusHooks;
  /** Port reopen backoff; defaults as the MQTT link's. */
  readonly reconnect?: Partial<ReconnectOptions>;
  /** The longest wait between two probes of a slave that is down; default 10 000 ms. */
  readonly probeMaxMs?: number;
  /** How often an absent port is looked for; default 500 ms. */
  readonly presencePollMs?: number;
  /** An open (or close) not done within this: failed; default 2000 ms. */
  readonly openTimeoutMs?: number;
  /**
   * No slave answers and not one byte has come in for this long: the port is closed and reopened
   * (a dangling port whose writes never complete looks exactly like this); default 60 000 ms.
   */
  readonly reopenSilentMs?: number;
  /** [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
}

export type BusPortState = 'absent' | 'opening' | 'open' | 'backoff';

export interface SlaveStats {
  readonly deviceId: string;
  readonly unitId: number;
  readonly online: boolean;
  readonly consecutiveTimeouts: number;
  readonly batches: number;
  readonly counters: Readonly<SlaveCounters>;
  readonly lastError: string | null;
  /** Wall-clock ms of the last reply; null before the first. */
  readonly lastReplyAt: number | null;
}

export interface BusStats {
  readonly path: string;
  readonly port: BusPortState;
  readonly portAttempts: number;
  /** Times the port was opened (a reopen after a failure counts). */
  readonly opens: number;
  /** Why the port last failed, was closed or could not be opened (kept after a reopen). */
  readonly lastPortError: string | null;
  /** Bytes dropped outside a transaction (noise, late replies) since the port was last opened. */
  readonly noiseBytes: number;
  readonly queuedWrites: number;
  readonly slaves: readonly SlaveStats[];
}
