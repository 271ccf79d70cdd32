// A minimal CSV reader: a header row, then one record per line, no quoted fields.

export type CsvRow = Record<string, string>;

export function parseCsv(text: string): CsvRow[] {
  const [header, ...lines] = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const columns = header.split(',').map((column) => column.trim());
  return lines.map((line) => {
    const fields = line.split(',').map((field) => field.trim());
    return Object.fromEntries(columns.map((column, index) => [column, fields[index] ?? '']));
  });
}
