// Python's str methods that the harness's task code calls, where JavaScript's differ.

/** Characters Python's str.isspace() accepts (U+001C–U+001F and U+0085 included, U+FEFF not). */
const PY_SPACE = "[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const LEADING = new RegExp(`^${PY_SPACE}+`);
const TRAILING = new RegExp(`${PY_SPACE}+$`);

export function pyLstrip(s: string): string {
  return s.replace(LEADING, "");
}

export function pyStrip(s: string): string {
  return s.replace(LEADING, "").replace(TRAILING, "");
}

/**
 * str.capitalize(): first character upper-cased, the rest lower-cased. Python title-cases the first
 * character, which differs from upper-casing for a few characters (ß → "Ss", ligatures, Latin digraphs,
 * Greek with ypogegrammeni); none starts a HellaSwag ctx_b.
 */
export function pyCapitalize(s: string): string {
  const first = s.codePointAt(0);
  if (first === undefined) return s;
  const head = String.fromCodePoint(first);
  return head.toUpperCase() + s.slice(head.length).toLowerCase();
}
