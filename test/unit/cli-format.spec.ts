/** The CLI's text for people: tables that fit their width, values on one line, escapes, durations. */
import { renderTable } from '../../lib/cli/format/table.js';
import { cut, duration, json, oneLine, shortTime, time } from '../../lib/cli/format/text.js';
import { duration as parseDuration, jsonValue, positiveInteger, taskId } from '../../lib/cli/cli.arguments.js';

describe('renderTable', () => {
  const rows = [
    { id: '9a6300e7-94ce-4776-b5e0-0386b3cff52c', name: 'a-task-name-that-is-far-too-long-for-eighty-columns', note: 'x'.repeat(200) },
    { id: '1afe8315-c976-43ce-9ce1-b9cd3bb7dd8c', name: 'short', note: 'ok' },
  ];
  const columns = [
    { header: 'ID', value: (r: (typeof rows)[number]) => r.id, fixed: true },
    { header: 'NAME', value: (r: (typeof rows)[number]) => r.name },
    { header: 'NOTE', value: (r: (typeof rows)[number]) => r.note },
  ];

  it('fits the width by cutting the widest columns that may be cut, never the fixed ones', () => {
    const lines = renderTable(columns, rows, 80).split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines[1].startsWith(`${rows[0].id}  a-task-name`)).toBe(true);
    expect(lines[1]).toMatch(/…/);
    expect(lines[2]).toMatch(/^1afe8315-c976-43ce-9ce1-b9cd3bb7dd8c {2}short {2,}ok$/);
  });

  it('keeps everything when it fits, right-aligns numbers and leaves no trailing spaces', () => {
    const text = renderTable([
      { header: 'QUEUE', value: (r: { q: string; n: number }) => r.q },
      { header: 'COUNT', value: (r) => String(r.n), align: 'right' as const },
    ], [{ q: 'default', n: 7 }, { q: 'b', n: 1234 }], 80);
    expect(text).toBe('QUEUE    COUNT\ndefault      7\nb         1234');
  });

  it('puts each cell on one line, with control and bidi characters escaped', () => {
    const text = renderTable([{ header: 'V', value: (r: string) => r }], ['a\nb\u001b[31mc\u202ed'], 80);
    expect(text).toBe('V\na\\nb\\u001b[31mc\\u202ed');
  });
});

describe('text helpers', () => {
  it('cuts with an ellipsis, escapes, prints JSON on one line and UTC times', () => {
    expect(cut('abcdef', 4)).toBe('abc…');
    expect(cut('abc', 4)).toBe('abc');
    expect(oneLine('tab\there\r\n')).toBe('tab\\there\\r\\n');
    expect(json({ a: [1, 'x\ny'] })).toBe(String.raw`{"a":[1,"x\ny"]}`);
    expect(json(undefined)).toBe('');
    const at = new Date('2026-12-07T00:43:33.123Z');
    expect([time(at), shortTime(at), time(null)]).toEqual(['2026-12-07 00:43:33Z', '12-07 00:43:33', '-']);
  });

  it('says durations in their largest units', () => {
    expect([850, 12_000, 192_000, 7_500_000, 3 * 86_400_000 + 4 * 3_600_000].map(duration)).toEqual(['850ms', '12s', '3m12s', '2h05m', '3d04h']);
    expect(duration(null)).toBe('-');
  });
});

describe('argument parsers (a bad value is a usage error naming what is expected)', () => {
  it('durations', () => {
    expect(['250', '250ms', '30s', '15m', '12h', '7d', '2w', '1.5h'].map(parseDuration))
      .toEqual([250, 250, 30_000, 900_000, 43_200_000, 604_800_000, 1_209_600_000, 5_400_000]);
    for (const bad of ['', 'soon', '-1s', '1y', '1 d']) expect(() => parseDuration(bad)).toThrow(/expected a duration/);
  });

  it('ids, counts and JSON', () => {
    expect(taskId('9A6300E7-94CE-4776-B5E0-0386B3CFF52C')).toBe('9a6300e7-94ce-4776-b5e0-0386b3cff52c');
    expect(() => taskId('9a6300e7')).toThrow(/expected a task id/);
    expect(positiveInteger('20')).toBe(20);
    for (const bad of ['0', '-1', '1.5', 'x', '']) expect(() => positiveInteger(bad)).toThrow(/at least 1/);
    expect(jsonValue('{"a":1}')).toEqual({ a: 1 });
    expect(jsonValue('null')).toBeNull();
    expect(() => jsonValue('text')).toThrow(/expected JSON/);
  });
});
