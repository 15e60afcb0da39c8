/**
 * Reads back what src/rules/csv.ts writes (RFC 4180: quoted fields, doubled quotes, CRLF lines,
 * an optional UTF-8 BOM), so export tests compare parsed values rather than raw text. A field the
 * writer defused (a leading `'` before `=`, `+`, `-`, `@`) is returned as written.
 */
export function parseCsv(text: string, delimiter: ',' | ';' = ','): string[][] {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (quoted) {
      if (ch === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) {
      row.push(field);
      field = '';
    } else if (ch === '\r' && src[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length) throw new Error('the last line does not end with CRLF');
  return rows;
}

/** Rows as objects keyed by the header row. */
export function csvRecords(text: string, delimiter: ',' | ';' = ','): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text, delimiter);
  if (!header) throw new Error('no header row');
  return rows.map((r) => {
    if (r.length !== header.length) throw new Error(`a row has ${r.length} fields, the header ${header.length}`);
    return Object.fromEntries(header.map((h, i) => [h, r[i]!]));
  });
}
