/**
 * A statement name derived from the SQL text (FNV-1a, 52 bits): preparing the same query twice
 * reuses one server-side statement per connection instead of piling up new ones.
 */
export function statementName(sql: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return `syncline_${(h1 >>> 0).toString(36)}${(h2 >>> 0).toString(36)}_${sql.length}`;
}
