/**
 * CSV as RFC 4180 writes it: fields separated by commas, a field with a comma, quote or line
 * break quoted, quotes doubled. Lines end with `\n` (a `\r\n` is read too).
 *
 * @example
 * formatCsv([['id', 'tags'], ['pump-1', 'a;b']]); // 'id,tags\npump-1,a;b\n'
 * parseCsv('id,name\n"p,1","say ""hi"""\n');       // { ok: true, value: [['id','name'],['p,1','say "hi"']] }
 */
import { err, type Failure, ok, type Result } from './result.js';

const needsQuotes = /[",\r\n]/;

export function formatCsv(rows: readonly (readonly string[])[]): string {
  return rows
    .map((r) => r.map((f) => (needsQuotes.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(','))
    .map((line) => `${line}\n`)
    .join('');
}

/** The records of a CSV text; `badCsv` names the line of an unterminated quote or stray text. */
export function parseCsv(text: string): Result<string[][], Failure<'badCsv'>> {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let line = 1;
  let i = 0;
  let quoted = false;
  let fieldStarted = false;
  const endField = () => {
    row.push(field);
    field = '';
    fieldStarted = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r')
          return err('badCsv', `line ${line}: text after a closing quote`);
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && !fieldStarted && field === '') {
      quoted = true;
      fieldStarted = true;
      i++;
    } else if (c === ',') {
      endField();
      i++;
    } else if (c === '\n' || c === '\r') {
      endField();
      rows.push(row);
      row = [];
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
    } else {
      field += c;
      fieldStarted = true;
      i++;
    }
  }
  if (quoted) return err('badCsv', `line ${line}: a quoted field is not closed`);
  if (fieldStarted || row.length > 0) {
    endField();
    rows.push(row);
  }
  return ok(rows.filter((r) => !(r.length === 1 && r[0] === '')));
}
