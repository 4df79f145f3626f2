/** The name a typo meant: what an "unknown setting" error suggests instead (common/config.ts). */
import t from 'tap'
import { editDistance, similarName } from '../../common/similar-name.js'

t.test('edit distance counts inserts, deletes, substitutions and swapped neighbours, ignoring case', (t) => {
  t.equal(editDistance('host', 'host'), 0)
  t.equal(editDistance('hots', 'host'), 1, 'two neighbours swapped is one edit')
  t.equal(editDistance('mqttport', 'mqttPort'), 0)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('abc', ''), 3)
  t.equal(editDistance('intervall', 'interval'), 1)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.end()
})

t.test('the one close known name, or none when nothing is close or two are as close', (t) => {
  const keys = ['dataDir', 'host', 'mqttPort', 'httpPort', 'logLevel']
  t.equal(similarName('hots', keys), 'host')
  t.equal(similarName('mqtt_port', keys), 'mqttPort')
  t.equal(similarName('loglevel', keys), 'logLevel')
  t.equal(similarName('typo', keys), undefined, 'nothing close')
  t.equal(similarName('Port', keys), undefined, 'too far from either port')
  t.equal(similarName('xttpPort', ['mttpPort', 'httpPort']), undefined, 'two as close: no guess')
  t.equal(similarName('a', ['b']), 'b', 'a one-letter name may be one edit off')
  t.end()
})
