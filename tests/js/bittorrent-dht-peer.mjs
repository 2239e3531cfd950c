// Third-party DHT peers for dhtmeet's interop tests: nodes of the `bittorrent-dht` npm
// package on 127.0.0.1, driven by tests/tests/dht_interop_bittorrent_dht.rs.
//
// Protocol: one JSON object per line. The script starts with no node and prints
// {"ready":true}. Each request on stdin carries a "seq" and gets exactly one reply on
// stdout, {"seq":N,"ok":true,...} or {"seq":N,"ok":false,"error":"..."}; requests may
// overlap and replies come in the order they finish. Ids, info-hashes and raw bytes are
// hex; addresses are "ip:port". Requests:
//   start    {bootstrap:[addr]}                 -> {node, id, addr} once bootstrapped
//   announce {node, info_hash, port}            -> {hits}   (port 0 = implied_port)
//   lookup   {node, info_hash}                  -> {peers:[{peer, from}], visited}
//                                                  (from = null: the node's own store)
//   table    {node}                             -> {nodes:[{id, addr}]}
//   query    {node, to, q, a}                   -> {r:{id, nodes, values, token}} | {e:[code, msg]}
//                                                  a raw KRPC query through the node's
//                                                  k-rpc socket; a's id/target/info_hash/
//                                                  token given in hex become byte strings
//   send_raw {node, to, hex}                    -> {reply: hex | null} (first datagram back
//                                                  from `to` within 1 s)
//   stats    {node}                             -> {warnings, queries:{method: count}}
//
// Safety: every node gets an explicit `bootstrap` (never the public routers that
// bittorrent-dht falls back to) and listens on 127.0.0.1 in the same tick as it is
// created, before its first query could bind the socket to another address.

import DHT from 'bittorrent-dht'
import { createInterface } from 'node:readline'

const nodes = []
const TIMEOUT_MS = 15000

function reply (msg) {
  process.stdout.write(JSON.stringify(msg) + '\n')
}

function parseAddr (s) {
  const i = s.lastIndexOf(':')
  const host = s.slice(0, i)
  const port = Number(s.slice(i + 1))
  if (host !== '127.0.0.1') throw new Error(`refusing non-loopback address ${s}`)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in ${s}`)
  return { host, port }
}

const fmt = (host, port) => `${host}:${port}`
const hex = (b) => (Buffer.isBuffer(b) ? b.toString('hex') : null)

function compactNodes (buf) {
  const out = []
  for (let i = 0; buf && i + 26 <= buf.length; i += 26) {
    const ip = [...buf.subarray(i + 20, i + 24)].join('.')
    out.push({ id: buf.subarray(i, i + 20).toString('hex'), addr: fmt(ip, buf.readUInt16BE(i + 24)) })
  }
  return out
}

function compactPeer (buf) {
  return fmt([...buf.subarray(0, 4)].join('.'), buf.readUInt16BE(4))
}

function node (i) {
  const n = nodes[i]
  if (!n) throw new Error(`no node ${i}`)
  return n
}

function withTimeout (promise, what) {
  let timer
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), TIMEOUT_MS)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

function start ({ bootstrap = [] }) {
  const dht = new DHT({ bootstrap: bootstrap.map(parseAddr) })
  dht.listen(0, '127.0.0.1')
  const entry = { dht, warnings: 0, queries: {} }
  dht.on('warning', () => { entry.warnings++ })
  dht.on('error', (err) => process.stderr.write(`bittorrent-dht error: ${err}\n`))
  dht._rpc.on('query', (q) => {
    const method = String(q.q)
    entry.queries[method] = (entry.queries[method] || 0) + 1
  })
  nodes.push(entry)
  const index = nodes.length - 1
  const listening = new Promise((resolve) => dht.once('listening', resolve))
  const ready = new Promise((resolve) => (dht.ready ? resolve() : dht.once('ready', resolve)))
  return Promise.all([listening, ready]).then(() => {
    const { address, port } = dht.address()
    return { node: index, id: dht.nodeId.toString('hex'), addr: fmt(address, port) }
  })
}

function announce ({ node: i, info_hash: ih, port = 0 }) {
  return new Promise((resolve, reject) => {
    node(i).dht.announce(ih, port, (err, hits) => (err ? reject(err) : resolve({ hits })))
  })
}

function lookup ({ node: i, info_hash: ih }) {
  const { dht } = node(i)
  const peers = []
  const onPeer = (peer, infoHash, from) => {
    if (infoHash.toString('hex') !== ih) return
    peers.push({ peer: fmt(peer.host, peer.port), from: from ? fmt(from.host || from.address, from.port) : null })
  }
  dht.on('peer', onPeer)
  return new Promise((resolve, reject) => {
    dht.lookup(ih, (err, visited) => {
      // 'peer' events of the last reply are emitted before this callback; the local
      // store's on the next tick after the lookup started.
      dht.removeListener('peer', onPeer)
      err ? reject(err) : resolve({ peers, visited })
    })
  })
}

function table ({ node: i }) {
  return Promise.resolve({
    nodes: node(i).dht.nodes.toArray().map((n) => ({ id: n.id.toString('hex'), addr: fmt(n.host, n.port) }))
  })
}

const BYTE_ARGS = new Set(['id', 'target', 'info_hash', 'token'])

function query ({ node: i, to, q, a = {} }) {
  const { dht } = node(i)
  const args = {}
  for (const [k, v] of Object.entries(a)) args[k] = BYTE_ARGS.has(k) ? Buffer.from(v, 'hex') : v
  return new Promise((resolve, reject) => {
    // k-rpc's query: its own 2-byte transaction id, the reply matched by id and source IP.
    dht._rpc.query(parseAddr(to), { q, a: args }, (err, res) => {
      if (err && res && res.e) return resolve({ e: [res.e[0], String(res.e[1] ?? '')] })
      if (err) return reject(err)
      const r = res.r
      resolve({
        r: {
          id: hex(r.id),
          nodes: compactNodes(r.nodes),
          values: (r.values || []).map(compactPeer),
          token: hex(r.token)
        }
      })
    })
  })
}

function sendRaw ({ node: i, to, hex: bytes }) {
  const socket = node(i).dht._rpc.socket.socket
  const dest = parseAddr(to)
  return new Promise((resolve) => {
    const onMessage = (buf, rinfo) => {
      if (rinfo.address !== dest.host || rinfo.port !== dest.port) return
      done(buf.toString('hex'))
    }
    const timer = setTimeout(() => done(null), 1000)
    function done (reply) {
      clearTimeout(timer)
      socket.removeListener('message', onMessage)
      resolve({ reply })
    }
    socket.on('message', onMessage)
    socket.send(Buffer.from(bytes, 'hex'), dest.port, dest.host)
  })
}

function stats ({ node: i }) {
  const { warnings, queries } = node(i)
  return Promise.resolve({ warnings, queries })
}

const handlers = { start, announce, lookup, table, query, send_raw: sendRaw, stats }

createInterface({ input: process.stdin }).on('line', (line) => {
  let req
  try {
    req = JSON.parse(line)
  } catch (err) {
    return reply({ seq: null, ok: false, error: `bad request: ${err.message}` })
  }
  const handler = handlers[req.cmd]
  const work = handler
    ? Promise.resolve().then(() => handler(req))
    : Promise.reject(new Error(`unknown command ${req.cmd}`))
  withTimeout(work, req.cmd).then(
    (result) => reply({ seq: req.seq, ok: true, ...result }),
    (err) => reply({ seq: req.seq, ok: false, error: String(err && err.message) })
  )
}).on('close', () => {
  // The test closed our stdin (or died): stop every node and exit.
  for (const { dht } of nodes) dht.destroy()
  setTimeout(() => process.exit(0), 100).unref()
})

reply({ ready: true })
