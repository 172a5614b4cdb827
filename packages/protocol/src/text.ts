/** "1 slot", "3 slots": for log lines. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The end of an exhaustive `switch (message.type)`: the compiler proves it unreachable. */
export function assertNever(value: never): never {
  throw new Error(`unhandled value ${JSON.stringify(value)}`);
}
