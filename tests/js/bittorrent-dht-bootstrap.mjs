// One `bittorrent-dht` node as the bootstrap node of a test network, for the real-NAT
// tests (tests/tests/real_nat.rs), which run it inside a network namespace.
//
// Usage: node bittorrent-dht-bootstrap.mjs IP:PORT
// Prints one line {"ready":true,"id":HEX,"addr":"ip:port"} once listening, then runs
// until its stdin closes (the test ended or died), when it stops and exits.
//
// Safety: the node starts with `bootstrap: []` (never the public routers bittorrent-dht
// falls back to), so it only ever answers, and queries back, nodes that contacted it
// first. It refuses to listen anywhere but loopback, RFC 1918 and the documentation
// networks (RFC 5737), the addresses a test network built in namespaces uses.

import DHT from 'bittorrent-dht'

function parseAddr (s) {
  const i = (s || '').lastIndexOf(':')
  const host = s.slice(0, i)
  const port = Number(s.slice(i + 1))
  const octets = host.split('.').map(Number)
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`not an IPv4 address: ${s}`)
  }
  const [a, b, c] = octets
  const testNet = (a === 192 && b === 0 && c === 2) || (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  const private1918 = a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168)
  if (!(a === 127 || testNet || private1918)) throw new Error(`refusing public address ${s}`)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in ${s}`)
  return { host, port }
}

const { host, port } = parseAddr(process.argv[2])
const dht = new DHT({ bootstrap: [] })
// Listen in the same tick as the node is created, before any query could bind elsewhere.
dht.listen(port, host)
dht.on('error', (err) => process.stderr.write(`bittorrent-dht error: ${err}\n`))
dht.once('listening', () => {
  const a = dht.address()
  process.stdout.write(JSON.stringify({ ready: true, id: dht.nodeId.toString('hex'), addr: `${a.address}:${a.port}` }) + '\n')
})
process.stdin.on('data', () => {})
process.stdin.on('end', () => {
  dht.destroy()
  setTimeout(() => process.exit(0), 100).unref()
})
