/** Counts in words, for the CLI's lines and the cloud's notices and log alike. */

/** `1 item`, `2 items`: a count and its word, agreed. */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/** `is` for one, `are` for any other count: the verb after plural's words. */
export const isAre = (n: number): string => (n === 1 ? 'is' : 'are')
