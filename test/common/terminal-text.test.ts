/** Names someone else chose, shown on a terminal: every control character visible, nothing obeyed. */
import t from 'tap'
import { forTerminal, linesForTerminal } from '../../common/terminal-text.js'

t.test('C0 controls, DEL and C1 controls show as \\xNN; bidi and line separators as \\u{NNNN}; the rest is untouched', async (t) => {
  t.equal(forTerminal('evil\x1b[31mred\nline'), 'evil\\x1B[31mred\\x0Aline')
  t.equal(forTerminal('\x00\t\r\x7f\x80\x9b2J'), '\\x00\\x09\\x0D\\x7F\\x80\\x9B2J')
  t.equal(forTerminal('a\u202eb\u2066c\u2028d\u061c'), 'a\\u{202E}b\\u{2066}c\\u{2028}d\\u{61C}')
  t.equal(forTerminal('Bob Smith/phones ü 写真 😀 \\x41'), 'Bob Smith/phones ü 写真 😀 \\x41', 'printable text, any script, stays')
  t.equal(
    linesForTerminal('line one: \x1b]0;title\x07\nline two\r\n'),
    'line one: \\x1B]0;title\\x07\nline two\\x0D\n',
    'LF stays a line break',
  )
})
