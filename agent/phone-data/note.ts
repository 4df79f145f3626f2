/** A note as the phone keeps it (S1): plain UTF-8 text whose first line is its title. */

export interface Note {
  title: string
  body: string
}

export const toNoteText = (n: Note): string =>
  n.body === '' ? `${n.title}\n` : `${n.title}\n${n.body.endsWith('\n') ? n.body : n.body + '\n'}`

export function parseNote(text: string): Note {
  const newline = text.indexOf('\n')
  if (newline < 0) return { title: text.trim(), body: '' }
  return { title: text.slice(0, newline).trim(), body: text.slice(newline + 1).replace(/\n$/, '') }
}
