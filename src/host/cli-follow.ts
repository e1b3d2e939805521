/**
 * A `--wait` that outlives the app it follows. Rollouts and update jobs are persisted and go on
 * where they were when the app restarts (after a crash, `kill -9`, an upgrade), so a command
 * following one keeps following through the restart instead of giving up at the first call the
 * app does not answer: it says so once on stderr, finds the app again through the data folder (the
 * new process may have another pid, port and token) once a second, and says when it is back. It
 * gives up only at the command's own deadline. Refusals (any answer with `ok: false` other than
 * `unreachable`) end it at once, as before.
 *
 * @example
 * const app = followThroughRestarts(first, { reconnect, deadline, say: (l) => io.stderr(`${l}\n`) });
 * const rollouts = await app.call('rollouts', {}); // waits out a restart of the app
 */
import type { Failure, Result } from '../lib/result.js';
import type { AppClient, AppClientErrorCode } from './app-client.js';
import type { ArgsOf, Method, Results } from './contract.js';

export interface FollowOptions {
  /** Finds the app on the data folder again (it reads the lock file and the session anew). */
  readonly reconnect: () => Result<AppClient, Failure<AppClientErrorCode>>;
  /** Epoch ms past which an app still gone is given up on. */
  readonly deadline: number;
  /** One line for the operator (no newline). */
  readonly say: (line: string) => void;
  readonly retryMs?: number;
}

export interface Follower {
  /** The call's value; throws a {@link FollowError} for a refusal or an app gone past the deadline. */
  call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Results[M]>;
}

export class FollowError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function followThroughRestarts(first: AppClient, options: FollowOptions): Follower {
  let app = first;
  let lostAt: number | undefined;
  const retryMs = options.retryMs ?? 1000;
  return {
    async call(method, args) {
      for (;;) {
        const r = await app.call(method, args);
        if (r.ok) {
          if (lostAt !== undefined) {
            options.say(
              `the app is back (pid ${app.pid}, ${app.origin}) after ${Math.round((Date.now() - lostAt) / 1000)} s; following on`,
            );
            lostAt = undefined;
          }
          return r.value;
        }
        if (r.error.code !== 'unreachable') throw new FollowError(r.error.code, r.error.message);
        if (lostAt === undefined) {
          lostAt = Date.now();
          options.say(
            `the app (pid ${app.pid}) stopped answering: waiting for it to come back (what it was doing goes on after its restart; Ctrl-C stops waiting, not the work)`,
          );
        }
        // Until the data folder names a running app again: the old address may already serve
        // the new process under a new token, which would refuse the old one.
        for (;;) {
          if (Date.now() > options.deadline)
            throw new FollowError(
              'unreachable',
              `${r.error.message}; gave up waiting after ${Math.round((Date.now() - lostAt) / 1000)} s (the work goes on when the app starts again)`,
            );
          await new Promise((done) => setTimeout(done, retryMs));
          const again = options.reconnect();
          if (again.ok) {
            app = again.value;
            break;
          }
        }
      }
    },
  };
}
