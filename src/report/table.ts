// Plain-text tables for the terminal: padded columns, numbers right-aligned.

/** A cell that reads as a number: 12, -263, −263 (U+2212), 1,390, 0.5, 9e7, 12.5%, NaN, ±Infinity/inf. */
const NUMERIC =
  /^[-+\u2212]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?%?$|^[-+\u2212]?(?:inf|infinity|∞)$|^nan$/i;

export function isNumericCell(cell: string): boolean {
  return NUMERIC.test(cell.trim());
}

/** Terminal width of a string, counted in code points (no East-Asian wide characters expected). */
function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Format `rows` under `headers` as aligned columns separated by two spaces, with a dashed rule
 * under the header. A column whose non-empty cells all read as numbers (see `isNumericCell`) is
 * right-aligned, header included; every other column is left-aligned. Short rows are padded with
 * empty cells; a row longer than the header is a programming error. Trailing spaces are trimmed.
 * Returns the lines joined by "\n", without a final newline.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const n = headers.length;
  for (const [i, row] of rows.entries()) {
    if (row.length > n) throw new Error(`formatTable: row ${i} has ${row.length} cells, header has ${n}`);
  }
  const cells = rows.map((row) => headers.map((_, c) => row[c] ?? ""));
  const widths = headers.map((h, c) => Math.max(width(h), ...cells.map((row) => width(row[c]))));
  const numeric = headers.map((_, c) => {
    const filled = cells.map((row) => row[c]).filter((s) => s.trim() !== "");
    return filled.length > 0 && filled.every(isNumericCell);
  });
  const line = (row: string[]): string =>
    row
      .map((s, c) => {
        const pad = " ".repeat(widths[c] - width(s));
        return numeric[c] ? pad + s : s + pad;
      })
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(headers), rule, ...cells.map(line)].join("\n");
}
