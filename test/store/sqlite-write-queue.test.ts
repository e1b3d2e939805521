import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteConnection } from '../../src/store/sqlite-connection.js';
import { openSqliteConnection } from '../../src/store/sqlite-connection.js';
import type { WriteQueue } from '../../src/store/sqlite-write-queue.js';
import { createWriteQueue } from '../../src/store/sqlite-write-queue.js';
import { StoreError } from '../../src/store/store.js';
import { rawAll, tempDir } from './helpers.js';

describe('write queue (group commit)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let conn: SqliteConnection;
  let queue: WriteQueue;

  beforeEach(async () => {
    tmp = tempDir();
    conn = await openSqliteConnection(tmp.file, { readOnly: false });
    await conn.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    queue = createWriteQueue(conn);
  });
  afterEach(async () => {
    await conn.close();
    tmp.cleanup();
  });

  const insert =
    (id: number, v = 'x') =>
    (c: SqliteConnection) =>
      c.run('INSERT INTO t (id, v) VALUES (?, ?)', [id, v]);
  const ids = async () =>
    (await rawAll<{ id: number }>(tmp.file, 'SELECT id FROM t ORDER BY id')).map((r) => r.id);

  it('commits writes issued together in one transaction and acknowledges each after the COMMIT', async () => {
    let commits = 0;
    const counting: SqliteConnection = {
      ...conn,
      exec: (sql) => {
        if (sql === 'COMMIT') commits++;
        return conn.exec(sql);
      },
    };
    const q = createWriteQueue(counting);
    const seen: number[][] = [];
    await Promise.all(
      [1, 2, 3, 4].map((id) =>
        q
          .submit({ durability: 'normal', statements: 'one', run: insert(id) })
          .then(async () => seen.push(await ids())),
      ),
    );
    expect(commits).toBe(1);
    // Every acknowledgement came after all four rows were committed and visible to another connection.
    for (const visible of seen) expect(visible).toEqual([1, 2, 3, 4]);
  });

  it('sets synchronous per transaction: FULL when any write in it asks for it, NORMAL otherwise', async () => {
    const sync = (c: SqliteConnection) => c.get<{ synchronous: number }>('PRAGMA synchronous');
    const normal = await queue.submit({ durability: 'normal', statements: 'one', run: sync });
    const full = await queue.submit({ durability: 'full', statements: 'one', run: sync });
    const mixed = await Promise.all([
      queue.submit({ durability: 'normal', statements: 'one', run: sync }),
      queue.submit({ durability: 'full', statements: 'one', run: sync }),
    ]);
    expect(normal?.synchronous).toBe(1);
    expect(full?.synchronous).toBe(2);
    expect(mixed.map((r) => r?.synchronous)).toEqual([2, 2]);
  });

  it('rejects only the write that failed; the others in its transaction commit', async () => {
    await queue.submit({ durability: 'normal', statements: 'one', run: insert(1) });
    const results = await Promise.allSettled([
      queue.submit({ durability: 'full', statements: 'one', run: insert(2) }),
      // A constraint error: SQLite undoes this one statement only.
      queue.submit({ durability: 'full', statements: 'one', run: insert(1) }),
      // A multi-statement write that fails half-way is undone through its savepoint.
      queue.submit({
        durability: 'full',
        statements: 'many',
        run: async (c) => {
          await insert(10)(c);
          await insert(2)(c);
        },
      }),
      queue.submit({ durability: 'full', statements: 'one', run: insert(3) }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const failure = (results[1] as PromiseRejectedResult).reason;
    expect(failure).toBeInstanceOf(StoreError);
    expect(failure).toMatchObject({ code: 'writeFailed' });
    expect((failure as Error).message).toContain('UNIQUE');
    expect(await ids()).toEqual([1, 2, 3]);
  });

  it('rolls back and rejects the whole transaction when an error ends it (disk full, I/O error)', async () => {
    const ioError = Object.assign(new Error('SQLITE_IOERR: disk I/O error'), { code: 'SQLITE_IOERR' });
    const results = await Promise.allSettled([
      queue.submit({ durability: 'full', statements: 'one', run: insert(1) }),
      queue.submit({
        durability: 'full',
        statements: 'one',
        run: () => Promise.reject(ioError),
      }),
      queue.submit({ durability: 'full', statements: 'one', run: insert(2) }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason.message).toContain('rolled back');
    expect((results[1] as PromiseRejectedResult).reason.cause).toBe(ioError);
    expect(await ids()).toEqual([]);
    // The queue keeps working afterwards.
    await queue.submit({ durability: 'full', statements: 'one', run: insert(5) });
    expect(await ids()).toEqual([5]);
  });

  it('applies writes in submission order and reports when it is idle', async () => {
    const writes = Array.from({ length: 50 }, (_, i) =>
      queue.submit({
        durability: 'normal',
        statements: 'one',
        run: (c) => c.run('INSERT INTO t (v) VALUES (?)', [`w${i}`]),
      }),
    );
    expect(queue.depth).toBe(50);
    await queue.idle();
    expect(queue.depth).toBe(0);
    await Promise.all(writes);
    const rows = await rawAll<{ v: string }>(tmp.file, 'SELECT v FROM t ORDER BY id');
    expect(rows.map((r) => r.v)).toEqual(Array.from({ length: 50 }, (_, i) => `w${i}`));
  });
});
