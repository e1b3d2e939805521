/**
 * A device heard from that is not in the fleet, as every convention lists it for the operator:
 * our own protocol's link hub (src/transports/hub-discovery.ts) and the convention bridges
 * (src/conventions/discovery-sources.ts) both speak it, so the host shows them as one list.
 *
 * @example
 * const s: Sighting = { id: 'pump-9', kind: 'fleetvisor.generic', firmware: '1.4.2', via: 'mqtt',
 *   firstSeen: t0, lastSeen: t1, reason: 'manual' };
 */

export interface Sighting {
  readonly id: string;
  /** The fleet kind it would be added as. */
  readonly kind: string;
  /** What it reports as its firmware; '' when its convention carries none. */
  readonly firmware: string;
  /** Where it was heard: `mqtt`, `serial:/dev/ttyUSB0`, `mqtt:homie`, `sparkplug:Plant1/Line4` … */
  readonly via: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** `manual` (waits for the operator), `unknownKind`, `adoptionPaused`, or why it could not be added. */
  readonly reason: string;
}

/** What adopting a sighting answers. */
export type AdoptOutcome = { ok: true } | { ok: false; error: { code: string; message: string } };
