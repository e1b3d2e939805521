/**
 * How a command-line tool talks to the app running on a data folder (headless or desktop): the
 * folder's lock file (`fleetvisor.lock`) names the running app's pid and UI origin, and
 * `ui-session.json` (readable by the user alone, mode 0600) holds its access token. So only the
 * user who owns the data folder can drive the app from a terminal, and no token is ever put on a
 * command line or in the environment. Calls go to `POST /api/call` with the token as a bearer
 * token, through the same typed API and checks as the UI.
 *
 * @example
 * const app = connectToRunningApp(dataDir);
 * if (!app.ok) throw new Error(app.error.message); // notRunning: "no Fleetvisor runs on …"
 * const jobs = await app.value.call('firmwareJobs', {});
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import { resolveDataDir } from '../store/data-dir.js';
import type { ArgsOf, Envelope, Method, Results } from './contract.js';
import { LOCK_FILE_NAME } from './data-folder.js';
import { CLIENT_HEADER } from './server/calls.js';
import { loadUiSession } from './ui-session.js';

export type AppClientErrorCode = 'notRunning' | 'noToken';

export interface AppClient {
  /** The running app's UI origin, e.g. `http://127.0.0.1:41234`. */
  readonly origin: string;
  readonly pid: number;
  call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>>;
  /**
   * `GET path` (e.g. `/api/export/events?format=csv`) with the token, answered as soon as the
   * headers arrive: the caller streams the body (`Readable.fromWeb(res.body)`) at its own pace.
   * `unreachable` when the app does not answer; any HTTP status is the caller's to judge.
   */
  get(path: string): Promise<Envelope<Response>>;
}

/** Whether a process with this pid runs on this machine. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The app on the data folder a command line names: `--data-dir` (`explicit`), else the
 * environment's, else the platform's default, relative paths read from `cwd`.
 */
export function connectFromCommandLine(
  explicit: string | undefined,
  io: { readonly env: Readonly<Record<string, string | undefined>>; readonly cwd: string },
): Result<AppClient, Failure<AppClientErrorCode>> {
  const dataDir = resolveDataDir({
    explicit,
    env: io.env,
    platform: process.platform,
    homeDir: homedir(),
    cwd: io.cwd,
  });
  return connectToRunningApp(dataDir);
}

export function connectToRunningApp(
  dataDir: string,
  options: { readonly timeoutMs?: number } = {},
): Result<AppClient, Failure<AppClientErrorCode>> {
  let owner: { pid?: unknown; url?: unknown };
  try {
    owner = JSON.parse(readFileSync(join(dataDir, LOCK_FILE_NAME), 'utf8')) as typeof owner;
  } catch {
    return err(
      'notRunning',
      `no Fleetvisor runs on ${dataDir} (no ${LOCK_FILE_NAME}); start it with 'npm start' or 'fleetvisor serve --data-dir ${dataDir}'`,
    );
  }
  const pid = typeof owner.pid === 'number' ? owner.pid : 0;
  if (pid <= 0 || !alive(pid) || typeof owner.url !== 'string')
    return err(
      'notRunning',
      `no Fleetvisor runs on ${dataDir} (its lock names pid ${pid}, which is not running, or no UI address yet)`,
    );
  const session = loadUiSession(dataDir);
  if (!session)
    return err(
      'noToken',
      `the app on ${dataDir} left no readable ui-session.json (run this as the user who started it)`,
    );
  const origin = owner.url;
  const timeoutMs = options.timeoutMs ?? 30_000;
  return ok({
    origin,
    pid,
    async call(method, args) {
      try {
        const res = await fetch(`${origin}/api/call`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${session.token}`,
            // Audited as the command line's, not the UI's (src/host/server/calls.ts).
            [CLIENT_HEADER]: 'cli',
          },
          body: JSON.stringify({ method, args }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const body = (await res.json()) as Envelope<Results[typeof method]>;
        if (typeof body !== 'object' || body === null || typeof body.ok !== 'boolean')
          return {
            ok: false,
            error: { code: 'badResponse', message: `HTTP ${res.status} without an API answer` },
          };
        return body;
      } catch (error) {
        return unreachable(origin, error);
      }
    },
    async get(path) {
      // Only the headers are timed: a long download may take as long as it takes.
      const headers = new AbortController();
      const timer = setTimeout(() => headers.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      try {
        const res = await fetch(`${origin}${path}`, {
          headers: { authorization: `Bearer ${session.token}` },
          signal: headers.signal,
        });
        return { ok: true, value: res };
      } catch (error) {
        return unreachable(origin, error);
      } finally {
        clearTimeout(timer);
      }
    },
  });
}

/** A call or `get` the app did not answer (refused, reset, or over its time). */
function unreachable(origin: string, error: unknown) {
  return err('unreachable', `the app at ${origin} did not answer: ${(error as Error).message}`);
}
