// The JSON lines of a log read while it is still being written (a child's stderr, an audit file).
// Only whole lines count: a pipe hands over at most 64 KB per read and a file may be read between
// two writes, so the text after the last newline may be half a record.
export function wholeJsonLines(text: string): Array<Record<string, unknown>> {
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}
