/** What the web console says when it cannot reach the broker: words a person acts on, the technical reason kept beside them. */
import t from 'tap'
import { brokerClosed, brokerTrouble } from '../../../cli/web/broker-trouble.js'

const URL_ = 'ws://127.0.0.1:8080/mqtt'
const sys = (code: string, message: string): Error => Object.assign(new Error(message), { code })

t.test('each reason Node, MQTT or the broker gives, in words, with the reason as it was said', async (t) => {
  const said = (err: unknown, url = URL_): [string, string] => {
    const { text, detail } = brokerTrouble(err, url)
    return [text, detail]
  }
  t.same(said(sys('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8080')), [
    'The broker is not answering at 127.0.0.1:8080: is `fakephone broker` (or `fakephone demo`) running?',
    'connect ECONNREFUSED 127.0.0.1:8080',
  ])
  // A WebSocket transport passes the socket's error on as text only.
  t.match(said(new Error('Error: connect ECONNREFUSED 127.0.0.1:8080'))[0], /^The broker is not answering at 127\.0\.0\.1:8080/)
  t.same(said(sys('ENOTFOUND', 'getaddrinfo ENOTFOUND broker.lan'), 'http://broker.lan:8080'), [
    "The broker's address broker.lan cannot be found (DNS): check the address this console was given (--api).",
    'getaddrinfo ENOTFOUND broker.lan',
  ])
  t.match(said(sys('EAI_AGAIN', 'getaddrinfo EAI_AGAIN broker.lan'), 'http://broker.lan:8080')[0], /cannot be found \(DNS\)/)
  t.match(said(sys('ETIMEDOUT', 'connect ETIMEDOUT 10.0.0.9:8080'))[0], /^The broker at 127\.0\.0\.1:8080 does not answer in time/)
  t.match(said(new Error('connack timeout'))[0], /^The broker at 127\.0\.0\.1:8080 does not answer in time: is it overloaded\?$/)
  t.match(said(sys('ECONNRESET', 'read ECONNRESET'))[0], /^The connection to the broker at 127\.0\.0\.1:8080 was cut/)
  t.match(said(sys('EPIPE', 'write EPIPE'))[0], /was cut/)
  t.match(said(sys('EHOSTUNREACH', 'connect EHOSTUNREACH'))[0], /cannot be reached over the network/)
  t.match(said(sys('ENETUNREACH', 'connect ENETUNREACH'))[0], /cannot be reached over the network/)
  for (const refusal of [
    new Error('Connection refused: Not authorized'),
    new Error('Connection refused: Bad username or password'),
    { status: 401, message: 'missing or wrong console token' },
  ]) {
    t.match(said(refusal), [/^The broker refuses this console's token: .* Start `fakephone console web` again/, refusal.message])
    t.equal(brokerTrouble(refusal, URL_).state, 'token refused', 'the page says so beside "live", not "broker unreachable"')
  }
  t.same(said(new Error('something else')), ['The broker at 127.0.0.1:8080 cannot be reached.', 'something else'])
  t.same(said('a string'), ['The broker at 127.0.0.1:8080 cannot be reached.', 'a string'])
  t.equal(brokerTrouble(sys('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8080'), URL_).state, 'broker unreachable')
  t.same(brokerClosed(URL_), {
    state: 'broker unreachable',
    text: 'The broker at 127.0.0.1:8080 closed the connection: was it stopped or restarted?',
    detail: 'connection closed',
  })
})
