/**
 * The MQTT link's ingest pipeline (issue 12 §0, issue 16): what happens between mqtt.js handing
 * over a publish and the next packet being read — the backpressure (at `maxPendingIngest` store
 * writes not settled, mqtt.js's next step is held, so a flood waits in TCP and at the broker
 * instead of being dropped inside the host), a QoS 1 PUBACK held until its write settles
 * (`ackAfterCommit`), every write that fails counted as lost by cause, and the keepalive decision
 * (a connection being read, or paused for backpressure, is alive: see
 * {@link MqttIngest.onKeepaliveTimeout}). One per link, across its connections.
 *
 * @example
 * const ingest = new MqttIngest({ runtime, pid, name, maxPendingIngest: 50_000, ackAfterCommit: false,
 *   client: () => connection.client, isRunning: () => link.status === 'running' });
 * ingest.prepare(client, isCurrent); // on each new client
 * ingest.delivered(onMessage(deviceId, message, channel)); // per decoded publish
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Pid } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';

export interface MqttIngestDeps {
  readonly runtime: Runtime;
  readonly pid: Pid;
  /** The link's name, for log lines and reports. */
  readonly name: string;
  readonly maxPendingIngest: number;
  readonly ackAfterCommit: boolean;
  /** The link's current client (a late packet of an abandoned one is not paused for). */
  client(): MqttClient | undefined;
  isRunning(): boolean;
}

export class MqttIngest {
  private readonly d: MqttIngestDeps;
  private readonly maxPendingIngest: number;
  /** Publishes mqtt.js handed over (all connections): proof that a connection is alive. */
  private publishesRead = 0;
  private pendingIngest = 0;
  private heldAcks = 0;
  private pauses = 0;
  private keepalivesExcused = 0;
  private readonly lost: Record<string, number> = {};
  /** The write the last messages delivered share, while it is pending (see `track`). */
  private group: WriteGroup | undefined;
  /** The store write of the publish just delivered (read by `handleMessage` at once). */
  private lastDelivery: PromiseLike<unknown> | undefined;
  /** The paused pipeline's next step: mqtt.js reads the next packet once it runs. */
  private held: (() => void) | undefined;
  /** QoS 1 PUBACKs owed to `acksClient`, sent together once the socket read is handled. */
  private readonly acks: number[] = [];
  private acksClient: MqttClient | undefined;
  private acksQueued = false;

  constructor(deps: MqttIngestDeps) {
    this.d = deps;
    this.maxPendingIngest = deps.maxPendingIngest;
  }

  /** A decoded publish is about to be handed over: forget the previous one's write. */
  startPublish(): void {
    this.lastDelivery = undefined;
  }

  /** What `onMessage` returned for the publish: a store write to wait for, or anything else. */
  delivered(write: unknown): void {
    if (isThenable(write)) this.track(write);
  }

  /** The connection dropped: its pipeline is gone. */
  dropped(): void {
    this.held = undefined;
    this.acks.length = 0;
  }

  stats() {
    return {
      pendingIngest: this.pendingIngest,
      paused: this.held !== undefined,
      pauses: this.pauses,
      keepalivesExcused: this.keepalivesExcused,
      heldAcks: this.heldAcks,
      lost: { ...this.lost },
    };
  }

  /** mqtt.js's per-packet hooks on each new client: backpressure and the keepalive decision. */
  prepare(client: MqttClient, isCurrent: () => boolean): void {
    // mqtt.js handles one packet at a time and reads the next (and sends a QoS 1 PUBACK) only
    // once this calls back: holding the callback pauses the socket.
    client.handleMessage = (packet, done) => this.onHandled(client, packet, done);
    // mqtt.js's keepalive check, decided by the link (see onKeepaliveTimeout). Both are public
    // methods of mqtt.js 5's MqttClient, called by its KeepaliveManager.
    let readAtPing = this.publishesRead;
    const sendPing = client.sendPing.bind(client);
    const giveUp = client.onKeepaliveTimeout.bind(client);
    client.sendPing = () => {
      readAtPing = this.publishesRead;
      sendPing();
    };
    client.onKeepaliveTimeout = () => {
      if (isCurrent() && this.onKeepaliveTimeout(client, readAtPing)) return;
      giveUp();
    };
  }

  /**
   * Counts a store write until it settles; a refusal or a rejection is counted as lost, once per
   * message. Messages whose write is the same promise (the fleet's turn: one per socket read) are
   * counted together, with one `then` for all of them (issue 16).
   */
  private track(write: PromiseLike<unknown>): void {
    this.pendingIngest++;
    this.lastDelivery = write;
    const group = this.group;
    if (group !== undefined && group.write === write) group.messages++;
    else {
      this.group = new WriteGroup(this, write);
      write.then(this.group.onWritten, this.group.onFailed);
    }
  }

  /** A write settled for `group`'s messages; called by the group. */
  written(group: WriteGroup, result: unknown): void {
    if (this.group === group) this.group = undefined;
    const code = failureCode(result);
    if (code !== undefined) this.noteLost(code, group.messages);
    this.settled(group.messages);
  }

  /** A write rejected for `group`'s messages; called by the group. */
  failed(group: WriteGroup, error: unknown): void {
    if (this.group === group) this.group = undefined;
    this.noteLost(rejectionCode(error), group.messages);
    this.d.runtime.report(`MQTT link ${this.d.name}: a store write failed`, error, this.d.pid);
    this.settled(group.messages);
  }

  private noteLost(code: string, messages: number): void {
    const first = Object.keys(this.lost).length === 0;
    this.lost[code] = (this.lost[code] ?? 0) + messages;
    if (first)
      this.d.runtime.logger.error('MQTT link: received messages were lost on the way to the store', {
        link: this.d.name,
        cause: code,
      });
  }

  private settled(messages: number): void {
    this.pendingIngest -= messages;
    if (this.held && this.pendingIngest <= this.maxPendingIngest / 2) {
      const resume = this.held;
      this.held = undefined;
      resume();
    }
  }

  /**
   * mqtt.js's per-publish hook, called right after 'message' for the same packet. QoS 1 with
   * `ackAfterCommit`: the callback is given an error so mqtt.js sends no PUBACK and moves on; the
   * PUBACK goes once the store write settled. Either way, past `maxPendingIngest` the next step
   * is held until the store catches up.
   */
  private onHandled(client: MqttClient, packet: IPublishPacket, done: (error?: Error) => void): void {
    const write = this.lastDelivery;
    this.lastDelivery = undefined;
    this.publishesRead++;
    const messageId = packet.messageId;
    const deferAck = this.d.ackAfterCommit && packet.qos === 1 && write && messageId !== undefined;
    if (deferAck) {
      this.heldAcks++;
      const ack = () => {
        this.heldAcks--;
        if (client === this.d.client() && this.d.isRunning()) sendPuback(client, messageId);
      };
      write.then(ack, ack);
    } else if (packet.qos === 1 && messageId !== undefined) this.queueAck(client, messageId);
    const ackLater = packet.qos === 1 && messageId !== undefined;
    if (this.pendingIngest < this.maxPendingIngest || client !== this.d.client()) {
      // The common path: no closure per message.
      if (ackLater) done(ACK_DEFERRED);
      else done();
      return;
    }
    const next = ackLater ? () => done(ACK_DEFERRED) : () => done();
    this.pauses++;
    this.d.runtime.logger.debug('MQTT link paused: the store is catching up', {
      link: this.d.name,
      pendingIngest: this.pendingIngest,
    });
    this.held = () => {
      if (client === this.d.client()) next();
    };
  }

  /**
   * A QoS 1 PUBACK, sent with the others of the same socket read (issue 16): mqtt.js would write
   * each one alone (a `writev` system call per message, the largest single cost of QoS 1 ingest in
   * the profile). mqtt.js hands over a read's publishes one per `process.nextTick`, and a
   * microtask runs only once that queue is empty: after the whole read, or when the link holds the
   * next step for backpressure. A PUBACK still goes before the next read is handled.
   */
  private queueAck(client: MqttClient, messageId: number): void {
    if (client !== this.acksClient) {
      this.acks.length = 0; // owed on a connection that is gone
      this.acksClient = client;
    }
    this.acks.push(messageId);
    if (this.acksQueued) return;
    this.acksQueued = true;
    queueMicrotask(this.sendAcks);
  }

  private readonly sendAcks = (): void => {
    this.acksQueued = false;
    const client = this.acksClient;
    if (client !== undefined && this.acks.length > 0 && client === this.d.client() && this.d.isRunning())
      sendPubacks(client, this.acks);
    this.acks.length = 0;
  };

  /**
   * mqtt.js saw no PINGRESP (nor any ack) within 1.5 keepalives; true keeps the connection.
   *
   * Why: the PINGRESP is read in order, after every publish ahead of it in the socket. While the
   * link holds mqtt.js's next step for backpressure it reads nothing, so any pause longer than
   * about half a keepalive that overlaps a ping ended in "Keepalive timeout"; measured in the 10k
   * device run of issue 16 (SQLite store committing 50 000 writes at once every 30–40 s): pauses
   * of 38–44 s, the connection dropped every ~50 s, the broker threw away the host's queue each
   * time, and the link reconnected into the same pause (pendingIngest still 50 000). After a
   * pause it also dropped while reading the broker's backlog, 7 s after resuming.
   *
   * So: a connection whose publishes are being read is alive (the PINGRESP is behind them), and
   * one paused for backpressure is not judged at all — its pause ends when the store catches up
   * (`settled`), not on a timer: cutting pauses at half a keepalive was tried in the same run and
   * only moved the backlog from the broker into the store's full buffer (206 000 messages
   * refused `overloaded`, counted) without fewer broker resets. In both cases a PINGREQ goes out
   * now and the schedule restarts, so the broker keeps hearing from us at least every keepalive
   * (Mosquitto closes a client silent for 1.5 keepalives) and mqtt.js checks again 1.5 keepalives
   * later. A dead connection is still found: one that is read from is not dead, and a paused
   * one's first read or write after the pause fails (measured: a broker reset during a pause
   * showed as "ECONNRESET" at once when it ended) or the next check judges it.
   *
   * Not covered here: aedes (the embedded broker) handles a client's packets one at a time and
   * answers a PINGREQ only once its writes to that client drained (aedes lib/write.js), so it
   * closes a host whose socket stays full for 1.5 keepalives (or its 60 s `drainTimeout`) — 2
   * resets in 7 minutes of the 10k run, against a store that commits 50 000 writes per 30–90 s.
   */
  private onKeepaliveTimeout(client: MqttClient, readAtPing: number): boolean {
    const paused = this.held !== undefined;
    const reading = this.publishesRead !== readAtPing;
    if (!paused && !reading) return false;
    this.keepalivesExcused++;
    this.d.runtime.logger.debug('MQTT link: keepalive answered by our own state, not a PINGRESP', {
      link: this.d.name,
      paused,
      reading,
      pendingIngest: this.pendingIngest,
    });
    client.sendPing();
    client.reschedulePing(true);
    return true;
  }
}

/** Consecutive delivered messages with the same store write, and its two handlers. */
class WriteGroup {
  messages = 1;
  constructor(
    private readonly ingest: MqttIngest,
    readonly write: PromiseLike<unknown>,
  ) {}
  readonly onWritten = (result: unknown): void => this.ingest.written(this, result);
  readonly onFailed = (error: unknown): void => this.ingest.failed(this, error);
}

/** Given to mqtt.js's handleMessage callback: no PUBACK now (it is sent after the store write). */
const ACK_DEFERRED = new Error('PUBACK deferred until the store write settles');

/** The PUBACK mqtt.js would have sent, sent later. Relies on mqtt.js 5's `_sendPacket` (see the test). */
function sendPuback(client: MqttClient, messageId: number): void {
  const send: unknown = Reflect.get(client, '_sendPacket');
  if (typeof send === 'function') send.call(client, { cmd: 'puback', messageId }, () => {});
}

/**
 * PUBACKs for `messageIds` in one write to the client's socket: MQTT 3.1.1 PUBACK is 4 bytes
 * (0x40, remaining length 2, the packet id). The link speaks 3.1.1 (mqtt-connection.ts); mqtt.js
 * writes whole packets synchronously, so between two of its turns the stream is at a packet
 * boundary. A connection that is closing takes nothing (its session is gone with it).
 */
function sendPubacks(client: MqttClient, messageIds: readonly number[]): void {
  const stream = client.stream;
  if (client.connected && stream?.writable) stream.write(pubackBytes(messageIds));
}

/** MQTT 3.1.1 PUBACK packets for `messageIds` (1…65535), back to back. */
export function pubackBytes(messageIds: readonly number[]): Buffer {
  const bytes = Buffer.allocUnsafe(4 * messageIds.length);
  for (let i = 0; i < messageIds.length; i++) {
    const id = messageIds[i]!;
    bytes[4 * i] = 0x40;
    bytes[4 * i + 1] = 0x02;
    bytes[4 * i + 2] = id >> 8;
    bytes[4 * i + 3] = id & 0xff;
  }
  return bytes;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** The code of a `{ ok: false, error: { code } }` answer, else undefined. */
/**
 * The cause of a rejected store write: the store's own code (a StoreError: `writeFailed`,
 * `closed`, …), else `error`. Recognised by its name, so the transports need not import the store.
 */
export function rejectionCode(error: unknown): string {
  if (error instanceof Error && error.name === 'StoreError') {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
  }
  return 'error';
}

function failureCode(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || (result as { ok?: unknown }).ok !== false)
    return undefined;
  const code = (result as { error?: { code?: unknown } }).error?.code;
  return typeof code === 'string' ? code : 'unknown';
}
