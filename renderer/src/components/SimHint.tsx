/**
 * The command that simulates devices for this host: `npm run sim` pointed at the broker the host
 * actually uses (from its stats), not a fixed port — with `--mqtt-url mqtt://127.0.0.1:1884`, or
 * when the embedded broker had to take another port, a hint naming 1883 sent the simulator to
 * a broker the host does not hear.
 *
 * @example
 * <SimHint count={10} />  // npm run sim -- --mqtt 10 --url mqtt://127.0.0.1:40569
 */
import { useLive } from '../store/use-live.js';

export function SimHint({ count }: { readonly count: number }) {
  const url = useLive((s) => s.stats?.broker?.url ?? null);
  return <code>{`npm run sim -- --mqtt ${count} --url ${url ?? 'mqtt://127.0.0.1:1883'}`}</code>;
}
