/** Names someone else chose, shown on a terminal: every control character visible, nothing obeyed, each reading back one way. */
import t from 'tap'
import { forTerminal, lineForTerminal, linesForTerminal, quoted } from '../../common/terminal-text.js'

t.test('C0 controls, DEL and C1 controls show as \\xNN; bidi and line separators as \\u{NNNN}; the rest is untouched', async (t) => {
  t.equal(forTerminal('evil\x1b[31mred\nline'), 'evil\\x1B[31mred\\x0Aline')
  t.equal(forTerminal('\x00\t\r\x7f\x80\x9b2J'), '\\x00\\x09\\x0D\\x7F\\x80\\x9B2J')
  t.equal(forTerminal('a\u202eb\u2066c\u2028d\u061c'), 'a\\u{202E}b\\u{2066}c\\u{2028}d\\u{61C}')
  t.equal(forTerminal('Bob Smith/phones ü 写真 😀'), 'Bob Smith/phones ü 写真 😀', 'printable text, any script, stays')
  t.equal(
    linesForTerminal('line one: \x1b]0;title\x07\nline two\r\n'),
    'line one: \\x1B]0;title\\x07\nline two\\x0D\n',
    'LF stays a line break',
  )
})

t.test('a backslash shows as \\\\: a name holding the text \\x1B never reads as an escaped ESC', async (t) => {
  t.equal(forTerminal('\x1b'), '\\x1B', 'an ESC')
  t.equal(forTerminal('\\x1B'), '\\\\x1B', 'the four characters \\x1B')
  t.not(forTerminal('\\x1B'), forTerminal('\x1b'))
  t.equal(forTerminal('C:\\u{202E}\\'), 'C:\\\\u{202E}\\\\')
  // Read back: `\\` is a backslash, `\xNN` and `\u{N}` the character; every name comes back as it was.
  const unescape = (s: string): string =>
    s.replace(/\\(\\|x([0-9A-F]{2})|u\{([0-9A-F]+)\})/g, (_m, _c, x?: string, u?: string) =>
      String.fromCharCode(parseInt(x ?? u ?? '5C', 16)),
    )
  for (const name of ['\\x1B', '\x1b', '\\\x1b', 'a\\\\b', '\\u{202E}', '\u202e', 'plain\\'])
    t.equal(unescape(forTerminal(name)), name, JSON.stringify(name))
  t.equal(linesForTerminal(`said ${forTerminal('\\x1B\n')}\n`), 'said \\\\x1B\\x0A\n', 'a text of escaped values is not escaped twice')
})

t.test('quoted: a name in a message, in quotes, escaped as forTerminal escapes it and its own " shown as \\"', async (t) => {
  t.equal(quoted('x\x1b[2J\n\\"y'), '"x\\x1B[2J\\x0A\\\\\\"y"')
  t.equal(quoted('phone-a'), '"phone-a"', 'a plain name is only put in quotes')
  // A whole message (a refusal the broker sent, its names quoted already) stays on its line and is not escaped twice.
  const refusal = `device ${quoted('a\\b')} not found\nforged\x1b`
  t.equal(lineForTerminal(refusal), 'device "a\\\\b" not found\\x0Aforged\\x1B')
})
