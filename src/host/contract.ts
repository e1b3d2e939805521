/**
 * The one API the operator's views use, written once. Both transports serve it — IPC in the
 * Electron shell, HTTP + WebSocket in `fleetvisor serve` — and the renderer imports only its types.
 *
 * - **Calls**: `{ method, args }` → an {@link Envelope}. Every method's arguments are validated at
 *   the boundary by the zod schema in {@link METHODS} (unknown methods and bad arguments are
 *   `badRequest` with the reason); results are plain JSON.
 * - **Push stream**: a {@link Snapshot} first, then {@link Diff}s coalesced to at most 20 per
 *   second. A client that does not keep up is never buffered for: the host keeps only which
 *   things changed (bounded by the fleet's size, not by the message rate) and, past a bound,
 *   tells it to `resync` and sends a fresh snapshot when it can take one.
 *
 * This file is the one import point; the contract lives in ./contract/, one module per concern.
 * They import nothing but zod and types, so the renderer can import them.
 *
 * @example
 * const r = await api.call('devices', { text: 'pump', state: 'connected', limit: 50 });
 * if (r.ok) r.value.items; else r.error.code; // 'badRequest' | 'notFound' | …
 */

export * from './contract/alarms.js';
export * from './contract/cluster.js';
export * from './contract/commands.js';
export * from './contract/devices.js';
export * from './contract/discovery.js';
export * from './contract/envelope.js';
export * from './contract/firmware.js';
export * from './contract/methods.js';
export * from './contract/processes.js';
export * from './contract/results.js';
export * from './contract/stream.js';
export * from './contract/system.js';
