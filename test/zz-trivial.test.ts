import t from 'tap'
console.error('ARGV', JSON.stringify(process.execArgv), 'NO', process.env.NODE_OPTIONS)
t.pass('x')
