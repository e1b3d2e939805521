/**
 * What cluster instances say to each other when devices of the fleet changed in the shared
 * database (docs/scale-out.md, "One fleet in every UI"): one `NOTIFY` channel for the fleet, a
 * small JSON payload naming the instance and the devices whose rows it committed, or `all` when
 * more changed than a few notifications can name (a storm, or leases that moved). A reader reads
 * those rows again; nothing else is in the payload, so a lost or repeated notice costs a read, not
 * a wrong row.
 *
 * Payloads: `{"o":"beta","d":["pump-1","pump-2"]}` and `{"o":"beta","a":1}`. PostgreSQL refuses a
 * payload of 8000 bytes or more: the ids are split into notices of at most
 * {@link MAX_NOTICE_BYTES}, and past {@link MAX_IDS_PER_FLUSH} ids one `all` is sent instead.
 *
 * @example
 * encodeNotices('beta', ['pump-1', 'pump-2']);  // ['{"o":"beta","d":["pump-1","pump-2"]}']
 * decodeNotice('{"o":"beta","a":1}');           // { kind: 'all', from: 'beta', why: 'signalled' }
 */

/** The fleet's one channel (a database holds one fleet). */
export const FLEET_CHANGES_CHANNEL = 'fleetvisor_fleet_changes';

/** Most bytes of one payload (the server's limit is 8000). */
export const MAX_NOTICE_BYTES = 7000;

/**
 * Most ids named in one flush; past it one `all` notice, since every reader then compares the
 * versions of the whole fleet's rows in one narrow query instead of reading thousands by id.
 */
export const MAX_IDS_PER_FLUSH = 2000;

/** A change heard on the channel, or the listener's own `all` after it reconnected. */
export type FleetChange =
  | {
      readonly kind: 'devices';
      /** The instance that committed the change. */
      readonly from: string;
      readonly ids: readonly string[];
    }
  | {
      readonly kind: 'all';
      /** The instance that signalled; null: this instance's listener, after it reconnected. */
      readonly from: string | null;
      /** `signalled` by an instance; `reconnected`: notices may have been missed while it was down. */
      readonly why: 'signalled' | 'reconnected';
    };

/** The payloads that say `ids` changed on `from` (one `all` when `all` or past {@link MAX_IDS_PER_FLUSH}). */
export function encodeNotices(from: string, ids: readonly string[], all = false): string[] {
  const owner = JSON.stringify(from);
  if (all || ids.length > MAX_IDS_PER_FLUSH) return [`{"o":${owner},"a":1}`];
  const head = `{"o":${owner},"d":[`;
  const tail = ']}';
  const notices: string[] = [];
  let parts: string[] = [];
  let bytes = Buffer.byteLength(head) + Buffer.byteLength(tail);
  const base = bytes;
  for (const id of ids) {
    const part = JSON.stringify(id);
    const size = Buffer.byteLength(part) + 1;
    if (parts.length > 0 && bytes + size > MAX_NOTICE_BYTES) {
      notices.push(`${head}${parts.join(',')}${tail}`);
      parts = [];
      bytes = base;
    }
    parts.push(part);
    bytes += size;
  }
  if (parts.length > 0) notices.push(`${head}${parts.join(',')}${tail}`);
  return notices;
}

/** The change a payload says; undefined for one this version does not read (ignored). */
export function decodeNotice(payload: string | undefined): FleetChange | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? '');
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { o, a, d } = value as { o?: unknown; a?: unknown; d?: unknown };
  if (typeof o !== 'string') return undefined;
  if (a === 1) return { kind: 'all', from: o, why: 'signalled' };
  if (!Array.isArray(d)) return undefined;
  const ids = d.filter((id): id is string => typeof id === 'string');
  return ids.length === 0 ? undefined : { kind: 'devices', from: o, ids };
}
