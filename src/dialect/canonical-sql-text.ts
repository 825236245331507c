/**
 * Text helpers the dialects' `CanonicalSql` share: SQL text is rewritten only outside its quoted
 * parts ('string literals' and "identifiers"), which keep their case and spacing.
 */

/** Applies `rewrite` to every part of `sql` outside quotes and puts the quoted parts back as they were. */
export function rewriteUnquoted(sql: string, rewrite: (part: string) => string): string {
  let out = '';
  let plain = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch !== "'" && ch !== '"') {
      plain += ch;
      i++;
      continue;
    }
    // A quoted part runs to the matching quote; a doubled quote inside is an escaped one.
    let end = i + 1;
    while (end < sql.length) {
      if (sql[end] === ch) {
        if (sql[end + 1] === ch) end += 2;
        else break;
      } else end++;
    }
    out += rewrite(plain) + sql.slice(i, end + 1);
    plain = '';
    i = end + 1;
  }
  return out + rewrite(plain);
}

/** Lower-cases keywords and names outside quotes and collapses their spacing: `lower( 'A' )` is `lower('A')`. */
export function tidyUnquoted(sql: string): string {
  return rewriteUnquoted(sql, (part) =>
    part
      .toLowerCase()
      .replace(/\s+/g, ' ')
      .replace(/\(\s+/g, '(')
      .replace(/\s+\)/g, ')')
      .replace(/\s*,\s*/g, ', '),
  ).trim();
}

/** Removes parentheses that wrap the whole expression: `((now()))` is `now()`, `(a) + (b)` stays. */
export function stripOuterParentheses(sql: string): string {
  let text = sql.trim();
  while (text.startsWith('(') && text.endsWith(')') && closingParenthesis(text, 0) === text.length - 1) {
    text = text.slice(1, -1).trim();
  }
  return text;
}

/** The index of the parenthesis that closes the one at `open`, skipping quoted parts; -1 if none. */
function closingParenthesis(text: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch !== quote) continue;
      if (text[i + 1] === quote) i++;
      else quote = undefined;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i;
  }
  return -1;
}

/** The value of a whole-text string literal (`'it''s'` gives `it's`), or undefined when `sql` is not one. */
export function stringLiteralValue(sql: string): string | undefined {
  if (sql.length < 2 || !sql.startsWith("'") || !sql.endsWith("'")) return undefined;
  const inner = sql.slice(1, -1);
  // A lone quote inside means the text is several literals and something between them.
  if (inner.replaceAll("''", '').includes("'")) return undefined;
  return inner.replaceAll("''", "'");
}

/** A string literal of `value`. */
export function stringLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
