/**
 * Expected failures: a bad id, a missing file, an unreachable broker. Each
 * carries a `code` to branch on and a message meant for a person; the CLI
 * prints the message alone (no stack) and exits 1. Anything else is a bug.
 */
export class FakephoneError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = new.target.name
  }
}
