import { cut, oneLine } from './text.js';

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Numbers line up on the right. */
  align?: 'right';
  /** Never cut (ids, times, states): the other columns give way. */
  fixed?: boolean;
}

const GAP = 2;

/**
 * Rows under headers, in at most `width` columns: every column gets its widest cell, and while
 * the line is too long the widest column that may be cut loses a character (down to its
 * header's width, at least 4). Cells are on one line, with control characters escaped.
 */
export function renderTable<T>(columns: Column<T>[], rows: T[], width: number): string {
  const cells = rows.map((row) => columns.map((column) => oneLine(column.value(row))));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => [...line[i]].length)));
  const floor = columns.map((column) => (column.fixed ? Infinity : Math.max(4, column.header.length)));
  let total = widths.reduce((sum, w) => sum + w, 0) + GAP * (columns.length - 1);
  while (total > width) {
    let widest = -1;
    for (let i = 0; i < columns.length; i += 1) {
      if (widths[i] > floor[i] && (widest < 0 || widths[i] > widths[widest])) widest = i;
    }
    if (widest < 0) break; // nothing left to cut: the line stays longer
    widths[widest] -= 1;
    total -= 1;
  }
  const line = (values: string[]) => values.map((value, i) => {
    const text = cut(value, widths[i]);
    const pad = ' '.repeat(widths[i] - [...text].length);
    return columns[i].align === 'right' ? pad + text : text + pad;
  }).join(' '.repeat(GAP)).trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map(line)].join('\n');
}
