/** Counts in words, for the CLI's lines and the cloud's notices and log alike. */

/** `1 item`, `2 items`: a count and its word, agreed (`many` for a word whose plural is not just an `s`: `switches`). */
export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`

/** `is` for one, `are` for any other count: the verb after plural's words. */
export const isAre = (n: number): string => (n === 1 ? 'is' : 'are')
