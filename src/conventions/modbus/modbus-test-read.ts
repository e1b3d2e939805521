/**
 * A device's registers read once, as they would be polled, before it is added (the bridge's
 * `testRead`, modbus-bridge-process.ts): through the bus already running on its port (between two
 * of its requests), else through a bus opened for this read alone and closed after it. Bounded:
 * the answer comes within 3 s plus one timeout per batch (and one more), whatever the port does.
 *
 * @example
 * await testRead(context, { port: '/dev/ttyUSB0', slaveId: 3, registers: [...] });
 * // { ok: true, values: { temperature: 21.5 } }
 */
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { describeLine, lineOf, sameLine } from './modbus-bridge-model.js';
import type { LineSettings, ModbusBus, ReadOnceOutcome } from './modbus-bus.js';
import { startModbusBus } from './modbus-bus.js';
import { planBatches } from './modbus-codec.js';
import { modbusDevice } from './modbus-kind.js';

/** What {@link testRead} answers. */
export type TestReadOutcome =
  | ReadOnceOutcome
  | { readonly ok: false; readonly code: 'badAttributes' | 'lineConflict'; readonly message: string };

/** What a test read needs of the bridge. */
export interface TestReadContext {
  readonly runtime: Runtime;
  readonly owner: Pid;
  readonly reconnect: ReconnectOptions;
  readonly random: () => number;
  /** The bridge runs. */
  running(): boolean;
  /** The bus running on a port, with its line settings. */
  busOn(path: string): { readonly bus: ModbusBus; readonly line: LineSettings } | undefined;
}

/**
 * Reads a device's registers once. Answers the values by register name, or why not:
 * `badAttributes`, `lineConflict` (the port's bus runs other line settings), `timeout`,
 * `exception`, `crc`, `badFrame`, `portDown` (the port did not open in time, with its error),
 * `stopped`.
 */
export async function testRead(context: TestReadContext, attributes: unknown): Promise<TestReadOutcome> {
  const parsed = modbusDevice.parseAttributes(attributes);
  if (!parsed.ok) return { ok: false, code: 'badAttributes', message: parsed.message };
  const a = parsed.value;
  if (!context.running()) return { ok: false, code: 'stopped', message: 'the Modbus bridge is not running' };
  const line = lineOf(a);
  const request = { unitId: a.slaveId, registers: a.registers, timeoutMs: a.timeoutMs };
  const boundMs = 3000 + (planBatches(a.registers).length + 1) * a.timeoutMs;
  const running = context.busOn(a.port);
  if (running) {
    if (!sameLine(running.line, line))
      return {
        ok: false,
        code: 'lineConflict',
        message: `the bus on ${a.port} runs ${describeLine(running.line)}, not ${describeLine(line)}`,
      };
    return bounded(context, running.bus, running.bus.readOnce(request), boundMs);
  }
  let bus: ModbusBus;
  try {
    bus = startModbusBus(context.runtime, {
      path: a.port,
      line,
      slaves: [],
      reconnect: context.reconnect,
      random: context.random,
      hooks: { onSlaveUp() {}, onSlaveDown() {}, onValues() {}, onFault() {} },
    });
  } catch (error) {
    return { ok: false, code: 'portDown', message: `cannot open ${a.port}: ${(error as Error).message}` };
  }
  try {
    return await bounded(context, bus, bus.readOnce(request), boundMs);
  } finally {
    await bus.stop();
  }
}

/** The read's outcome, or after `boundMs` why it is late: no answer, or the port not open. */
function bounded(
  context: TestReadContext,
  bus: ModbusBus,
  read: Promise<ReadOnceOutcome>,
  boundMs: number,
): Promise<TestReadOutcome> {
  const { runtime } = context;
  return new Promise((resolve) => {
    const timer = runtime.timers.schedule(
      boundMs,
      () => {
        const s = bus.stats();
        resolve({
          ok: false,
          code: s.port === 'open' ? 'timeout' : 'portDown',
          message:
            s.port === 'open'
              ? `no answer within ${boundMs} ms`
              : `port ${bus.path} did not open within ${boundMs} ms${s.lastPortError ? `: ${s.lastPortError}` : ''}`,
        });
      },
      { owner: context.owner, label: 'modbus.testRead' },
    );
    void read.then((r) => {
      runtime.timers.cancel(timer);
      resolve(r);
    });
  });
}
