/**
 * The UI's URL, printed again when the log is busy: a start with thousands of devices scrolls the
 * first "Open the Fleetvisor UI at" line out of sight. After more than `everyLines` log lines since
 * it was last printed, the next line is followed by the URL again, at most once per
 * `minIntervalMs` (issue 13 §9). The URL carries the run's token: it goes to the terminal only.
 *
 * @example
 * const reminder = createUrlReminder({ write: (t) => process.stdout.write(t), now: () => Date.now() });
 * const logger = createConsoleLogger({ write: (line, level) => { writeLine(line, level); reminder.lineLogged(); } });
 * reminder.print(server.url);
 */
export interface UrlReminderOptions {
  readonly write: (text: string) => void;
  /** Milliseconds, monotonic enough for spacing the reminders. */
  readonly now: () => number;
  /** Lines logged since the URL was printed before it is printed again; default 40. */
  readonly everyLines?: number;
  /** Least time between two printings; default 30000. */
  readonly minIntervalMs?: number;
}

export interface UrlReminder {
  /** Prints the URL now and remembers it for the reminders. */
  print(url: string): void;
  /** One log line was written; may print the URL after it. */
  lineLogged(): void;
}

export const urlLine = (url: string): string => `\nOpen the Fleetvisor UI at: ${url}\n\n`;

export function createUrlReminder(options: UrlReminderOptions): UrlReminder {
  const everyLines = options.everyLines ?? 40;
  const minIntervalMs = options.minIntervalMs ?? 30_000;
  let url: string | undefined;
  let lines = 0;
  let printedAt = 0;
  const print = (u: string) => {
    url = u;
    lines = 0;
    printedAt = options.now();
    options.write(urlLine(u));
  };
  return {
    print,
    lineLogged() {
      if (url === undefined) return;
      lines++;
      if (lines > everyLines && options.now() - printedAt >= minIntervalMs) print(url);
    },
  };
}
