/**
 * Footnotes for the panel's tables of numbers: one line per column saying what its numbers mean.
 * They sit in the table's <tfoot>, so they travel with it and screen readers reach them after the
 * rows; a `title` alone would hide them from keyboard and touch users.
 */

/** One column's meaning: its header as the table writes it, and a sentence. */
export type ColumnNote = readonly [column: string, meaning: string];

/** A <tfoot> with one full-width row per note, for a table `columns` cells wide. */
export function tableNotes(columns: number, notes: readonly ColumnNote[]): HTMLTableSectionElement {
  const foot = document.createElement('tfoot');
  foot.className = 'table-notes';
  for (const [column, meaning] of notes) {
    const row = document.createElement('tr');
    const cell = document.createElement('td');
    cell.colSpan = columns;
    const line = document.createElement('p');
    const term = document.createElement('span');
    term.className = 'note-term';
    term.textContent = column;
    line.append(term, `: ${meaning}`);
    cell.append(line);
    row.append(cell);
    foot.append(row);
  }
  return foot;
}
