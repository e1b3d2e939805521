import { describe, expect, it } from 'vitest';
import { createUrlReminder, urlLine } from '../../src/host/url-reminder.js';

const URL = 'http://127.0.0.1:4310/#token=abc';

function setup() {
  const out: string[] = [];
  let t = 0;
  const reminder = createUrlReminder({ write: (s) => out.push(s), now: () => t });
  const log = (n: number) => {
    for (let i = 0; i < n; i++) {
      out.push(`line ${i}`);
      reminder.lineLogged();
    }
  };
  const urls = () => out.filter((s) => s === urlLine(URL)).length;
  return { out, reminder, log, urls, tick: (ms: number) => (t += ms) };
}

describe('UI URL reminder', () => {
  it('prints the URL again after more than 40 lines, at most every 30 s', () => {
    const { out, reminder, log, urls, tick } = setup();
    log(100); // before the URL is known: nothing to repeat
    expect(urls()).toBe(0);
    reminder.print(URL);
    expect(urls()).toBe(1);
    tick(30_000);
    log(40);
    expect(urls()).toBe(1);
    log(1);
    expect(urls()).toBe(2);
    expect(out.at(-1)).toBe(urlLine(URL)); // right after the line that made the log busy
    // Busy again at once: not before 30 s have passed.
    log(500);
    expect(urls()).toBe(2);
    tick(30_000);
    log(1);
    expect(urls()).toBe(3);
  });

  it('a quiet log does not repeat it however long it runs', () => {
    const { reminder, log, urls, tick } = setup();
    reminder.print(URL);
    for (let i = 0; i < 40; i++) {
      tick(60_000);
      log(1);
    }
    expect(urls()).toBe(1);
  });
});
