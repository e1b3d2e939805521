/**
 * What waits for a gap between two polls of a Modbus bus (modbus-bus.ts): writes to its slaves
 * and one-off reads, in order, each with the promise that hears its outcome; and how a write
 * that was not acknowledged, or a read that failed, is told. No port, no timers: the bus takes
 * the jobs and sends them.
 *
 * A write is only sent to a slave that is on the bus and answering: one removed meanwhile ends
 * `removed`, one gone down ends `offline` (at once for those queued when it goes down); when the
 * port goes down or the bus stops, every job ends `portDown` or `stopped`.
 *
 * @example
 * const queue = new RequestQueue();
 * const outcome = new Promise((resolve) => queue.pushWrite({ deviceId: 'boiler-1', request, resolve }));
 * const job = queue.takeWrite((id) => schedule.find(id), '/dev/ttyUSB0'); // the job, its slave answering
 * job.resolve({ ok: true, attempts: 1 });
 */
import type { TxFailure } from './modbus-bus-line.js';
import type { SlaveState } from './modbus-bus-plan.js';
import type { ReadOnceOutcome, ReadOnceRequest, SlaveConfig, WriteOutcome } from './modbus-bus-types.js';
import type { Batch, WriteRequest } from './modbus-codec.js';
import { describeBatch } from './modbus-codec.js';
import type { RegisterDef } from './modbus-kind.js';

export interface ReadJob {
  readonly request: ReadOnceRequest;
  readonly resolve: (outcome: ReadOnceOutcome) => void;
}

export interface WriteJob {
  readonly deviceId: string;
  readonly request: WriteRequest;
  readonly resolve: (outcome: WriteOutcome) => void;
}

/** The writes and one-off reads of one bus, each kind in the order asked. */
export class RequestQueue {
  private writes: WriteJob[] = [];
  private reads: ReadJob[] = [];

  get queuedWrites(): number {
    return this.writes.length;
  }

  pushWrite(job: WriteJob): void {
    this.writes.push(job);
  }

  pushRead(job: ReadJob): void {
    this.reads.push(job);
  }

  /** The next write whose slave is on the bus and answering; those before it end `removed` or `offline`. */
  takeWrite(find: (deviceId: string) => SlaveState | undefined, path: string): WriteJob | undefined {
    while (this.writes.length > 0) {
      const job = this.writes.shift()!;
      const s = find(job.deviceId);
      if (!s)
        job.resolve({ ok: false, code: 'removed', message: `device ${job.deviceId} is not on ${path}` });
      else if (!s.online)
        job.resolve({ ok: false, code: 'offline', message: `slave ${s.config.unitId} is not answering` });
      else return job;
    }
    return undefined;
  }

  takeRead(): ReadJob | undefined {
    return this.reads.shift();
  }

  /** The device's slave went down: its queued writes end `offline` with the reason. */
  failDevice(deviceId: string, reason: string): void {
    this.writes = this.writes.filter((j) => {
      if (j.deviceId !== deviceId) return true;
      j.resolve({ ok: false, code: 'offline', message: reason });
      return false;
    });
  }

  /** The devices are no longer on the bus: their queued writes end `removed`. */
  dropRemoved(deviceIds: ReadonlySet<string>, path: string): void {
    if (deviceIds.size === 0) return;
    this.writes = this.writes.filter((j) => {
      if (!deviceIds.has(j.deviceId)) return true;
      j.resolve({ ok: false, code: 'removed', message: `device ${j.deviceId} is no longer on ${path}` });
      return false;
    });
  }

  /** Every queued job ends: the port went down or the bus stops. */
  failAll(code: 'stopped' | 'portDown', message: string): void {
    const jobs = this.writes;
    this.writes = [];
    for (const j of jobs) j.resolve({ ok: false, code, message });
    const reads = this.reads;
    this.reads = [];
    for (const j of reads) j.resolve({ ok: false, code, message });
  }
}

/** The registers of the slave's map a write sets (for the fault's message). */
export function writeTargets(config: SlaveConfig, req: WriteRequest): RegisterDef[] {
  return config.registers.filter(
    (r) => (req.fc === 5 ? r.table === 'coil' : r.table === 'holding') && r.address === req.address,
  );
}

/** A write the slave did not acknowledge: refused, never answered, or the port went down first. */
export function writeFailure(last: TxFailure | undefined, unitId: number, path: string): WriteOutcome {
  const code = last?.code ?? 'portDown';
  return {
    ok: false,
    code,
    message:
      code === 'exception'
        ? `slave ${unitId} refused the write: ${last?.message}`
        : code === 'portDown'
          ? `port ${path} went down before the slave acknowledged`
          : `slave ${unitId} did not acknowledge the write: ${last?.message}`,
    ...(last?.exceptionCode === undefined ? {} : { exceptionCode: last.exceptionCode }),
  };
}

/** A one-off read of a batch that failed. */
export function readFailure(
  r: TxFailure,
  batch: Batch,
  request: ReadOnceRequest,
  path: string,
): ReadOnceOutcome {
  const what = `${describeBatch(batch)} of slave ${request.unitId} on ${path}`;
  return {
    ok: false,
    code: r.code,
    message:
      r.code === 'timeout'
        ? `no reply to reading ${what} within ${request.timeoutMs} ms (wrong slave id, port or line settings?)`
        : `reading ${what}: ${r.message}`,
    ...(r.exceptionCode === undefined ? {} : { exceptionCode: r.exceptionCode }),
  };
}
