/**
 * CSV as spreadsheets open it: a UTF-8 BOM first (without it Excel reads UTF-8 as the ANSI code
 * page and Cyrillic comes out garbled), CRLF lines, fields quoted as RFC 4180 says, and a text
 * that would run as a formula (`=`, `+`, `-`, `@`, tab, CR first: CSV injection, OWASP) made
 * text with a leading quote (a number such as `-150.00` stays a number). The delimiter is `,` or `;` (Excel in Russian locales expects `;`).
 */
export const CSV_BOM = '\uFEFF';

export type CsvDelimiter = ',' | ';';

export function csvField(raw: string, delimiter: CsvDelimiter = ','): string {
  // A number (a negative amount) stays a number; only text is guarded.
  const value = /^[=+\-@\t\r]/.test(raw) && !/^-?\d+(\.\d+)?$/.test(raw) ? `'${raw}` : raw;
  const special = delimiter === ';' ? /[";\r\n]/ : /[",\r\n]/;
  return special.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(fields: string[], delimiter: CsvDelimiter = ','): string {
  return `${fields.map((f) => csvField(f, delimiter)).join(delimiter)}\r\n`;
}
