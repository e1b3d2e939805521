/**
 * Commands to a running Mosquitto's dynamic security plugin, over its control topic
 * (`$CONTROL/dynamic-security/v1`, answers on `…/response`): one short-lived connection with the
 * given account, the commands in one message, their answers matched by correlation data.
 *
 * What can go wrong is a value: `unreachable` (no connection, or the account refused),
 * `notAllowed` (the broker refused the subscription to the answers: the account may not use the
 * plugin), `noAnswer` (nothing answered in time: no plugin on that broker, or the account may not
 * publish to it). A command the plugin refuses is in its answer (`error`), not a failure here.
 *
 * @example
 * const r = await sendDynsecCommands(host, dynsecDeviceAccountCommands('demo-m001', secret), {
 *   clientId: 'fleetvisor-3f9a0c21-accounts',
 * });
 * if (r.ok) r.value.find((a) => a.command === 'createClient')?.error; // undefined: created
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import type { Failure, Result } from '../lib/result.js';
import { err, ok } from '../lib/result.js';
import type { DynsecCommand } from './broker-accounts-dynsec.js';
import { DYNSEC_CONTROL_TOPIC, DYNSEC_RESPONSE_TOPIC } from './broker-accounts-dynsec.js';
import type { BrokerSettings } from './mqtt-connection.js';
import { hostClientOptions } from './mqtt-connection.js';

export type DynsecControlCode = 'unreachable' | 'notAllowed' | 'noAnswer';

/** The plugin's answer to one command (in the order sent); `error` set when it refused it. */
export interface DynsecAnswer {
  readonly command: string;
  readonly error?: string;
  readonly data?: unknown;
}

export interface DynsecControlOptions {
  /** The control connection's client id (not one of the account's other connections'). */
  readonly clientId: string;
  /** For connecting, and again for the answers; default 3000. */
  readonly timeoutMs?: number;
}

export async function sendDynsecCommands(
  broker: BrokerSettings,
  commands: readonly DynsecCommand[],
  options: DynsecControlOptions,
): Promise<Result<DynsecAnswer[], Failure<DynsecControlCode>>> {
  const timeoutMs = options.timeoutMs ?? 3000;
  let client: MqttClient;
  try {
    client = await connectAsync(
      broker.url,
      hostClientOptions(broker, { clientId: options.clientId, connectTimeoutMs: timeoutMs }),
    );
  } catch (error) {
    return err('unreachable', `no connection to ${broker.url}: ${(error as Error).message}`);
  }
  try {
    const nonce = randomBytes(6).toString('hex');
    const tagged = commands.map((c, i) => ({ ...c, correlationData: `${nonce}-${i}` }));
    const answers = new Map<string, DynsecAnswer>();
    const complete = new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        if (topic !== DYNSEC_RESPONSE_TOPIC) return;
        for (const answer of parseAnswers(payload)) {
          if (answer.correlationData?.startsWith(`${nonce}-`)) answers.set(answer.correlationData, answer);
        }
        if (answers.size === tagged.length) resolve();
      });
    });
    const granted = await client.subscribeAsync(DYNSEC_RESPONSE_TOPIC, { qos: 1 });
    if (granted.some((g) => g.qos === 128))
      return err(
        'notAllowed',
        `${broker.url} refused ${broker.username ?? 'this client'} its plugin's answers`,
      );
    await client.publishAsync(DYNSEC_CONTROL_TOPIC, JSON.stringify({ commands: tagged }), { qos: 1 });
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      complete.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!inTime)
      return err(
        'noAnswer',
        `no answer on ${DYNSEC_RESPONSE_TOPIC} within ${timeoutMs} ms (no dynamic security plugin, or ${broker.username ?? 'this client'} may not use it)`,
      );
    return ok(
      tagged.map((c) => {
        const { command, error, data } = answers.get(c.correlationData)!;
        return {
          command,
          ...(error !== undefined ? { error } : {}),
          ...(data !== undefined ? { data } : {}),
        };
      }),
    );
  } catch (error) {
    return err('unreachable', `${broker.url}: ${(error as Error).message}`);
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}

interface RawAnswer {
  readonly command: string;
  readonly error?: string;
  readonly data?: unknown;
  readonly correlationData?: string;
}

function parseAnswers(payload: Buffer): RawAnswer[] {
  try {
    const body = JSON.parse(payload.toString()) as { responses?: unknown };
    if (!Array.isArray(body.responses)) return [];
    return body.responses.filter(
      (r): r is RawAnswer =>
        typeof r === 'object' &&
        r !== null &&
        typeof (r as RawAnswer).command === 'string' &&
        (typeof (r as RawAnswer).correlationData === 'string' ||
          (r as RawAnswer).correlationData === undefined),
    );
  } catch {
    return [];
  }
}
