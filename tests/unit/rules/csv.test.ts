import { describe, expect, it } from 'vitest';
import { csvField, csvLine } from '../../../src/rules/csv.js';

describe('CSV fields', () => {
  it.each([
    ['plain', ',', 'plain'],
    ['a,b', ',', '"a,b"'],
    ['a,b', ';', 'a,b'],
    ['a;b', ';', '"a;b"'],
    ['say "hi"', ',', '"say ""hi"""'],
    ['two\r\nlines', ',', '"two\r\nlines"'],
    ['=SUM(A1)', ',', "'=SUM(A1)"],
    ['+7 999', ',', "'+7 999"],
    ['@cmd', ',', "'@cmd"],
    ['-150.50', ',', '-150.50'],
    ['-12', ';', '-12'],
    ['-1-1', ',', "'-1-1"],
  ])('%j with %j is %j', (raw, sep, out) => {
    expect(csvField(raw, sep as ',' | ';')).toBe(out);
  });

  it('joins a line with the delimiter and ends it with CRLF', () => {
    expect(csvLine(['a', 'b;c', '-1'], ';')).toBe('a;"b;c";-1\r\n');
  });
});
