/**
 * A peer-chosen string (a name, a reason) made safe for one log line: control characters and
 * line separators escaped, so no peer can forge or split log lines, and at most 200 characters.
 */
export function printable(text: string): string {
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}
