/** A strict RFC 4180 reader for tests: the records of a CSV text, throwing on anything malformed. */

/** The fields of one CSV record that holds no line break. */
export function parseCsvLine(line: string): string[] {
  const records = parseCsvText(`${line}\r\n`);
  if (records.length !== 1) throw new Error(`not one record: ${JSON.stringify(line)}`);
  return records[0]!;
}

/** Every record of a CSV text whose lines end with CRLF (a quoted field may hold line breaks). */
export function parseCsvText(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`a quote inside an unquoted field at ${i}`);
        field += text[i++];
      }
    }
    record.push(field);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      records.push(record);
      record = [];
      i += 2;
    } else throw new Error(`expected , or CRLF at ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`);
  }
  if (record.length > 0) throw new Error('the last record has no CRLF');
  return records;
}
