// panva's oidc-provider on 127.0.0.1: an OAuth 2.0 / OpenID Connect server that Herald did not write.
//
// Usage: node server.mjs --client-id ID --client-secret SECRET --redirect-uri URL [--redirect-uri URL ...]
//                        [--token-auth-method client_secret_post|client_secret_basic] [--port N]
// Each option falls back to an environment variable: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
// OIDC_REDIRECT_URIS (space separated), OIDC_TOKEN_AUTH_METHOD, OIDC_PORT. The port defaults to a free one.
//
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} to stdout once it serves, then runs until
// SIGTERM/SIGINT. Diagnostics, including one line per token and revocation request, go to stderr.
// GET /_peer/stats answers the token and revocation endpoint outcomes counted so far, so a test can
// prove an exchange happened without trusting the client's own account of it.
//
// One confidential client: authorization_code + refresh_token, PKCE (S256) required on every
// authorization request, refresh tokens for `offline_access` (which oidc-provider grants only with
// prompt=consent) rotated on every use, RFC 7009 revocation. The development interactions serve the
// login form (any login, any password) and the consent form. Everything lives in memory.

import http from 'node:http'
import { parseArgs } from 'node:util'

import Provider from 'oidc-provider'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'token-auth-method': { type: 'string' },
  },
})

const fail = (message) => {
  process.stderr.write(`oidc-provider peer: ${message}\n`)
  process.exit(1)
}

const env = process.env
const clientId = args['client-id'] ?? env.OIDC_CLIENT_ID
const clientSecret = args['client-secret'] ?? env.OIDC_CLIENT_SECRET
const redirectUris = args['redirect-uri'] ?? (env.OIDC_REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean)
const tokenAuthMethod = args['token-auth-method'] ?? env.OIDC_TOKEN_AUTH_METHOD ?? 'client_secret_post'
const port = Number(args.port ?? env.OIDC_PORT ?? 0)

if (!clientId || !clientSecret || redirectUris.length === 0) {
  fail('client id, client secret and at least one redirect URI are required')
}
if (!['client_secret_post', 'client_secret_basic'].includes(tokenAuthMethod)) {
  fail(`unsupported token endpoint auth method ${tokenAuthMethod}`)
}

// The issuer carries the port, so bind first (a free port when none is given), then build the provider.
const server = http.createServer()
await new Promise((resolve, reject) => {
  server.once('error', reject)
  server.listen(port, '127.0.0.1', resolve)
})
const issuer = `http://127.0.0.1:${server.address().port}`

// Any login is an account; its claims derive from the login so a test can recognise them.
const findAccount = (_ctx, sub) => ({
  accountId: sub,
  claims: () => ({ sub, name: `Peer ${sub}`, email: `${sub}@peer.test`, email_verified: true }),
})

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: tokenAuthMethod,
    },
  ],
  findAccount,
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  pkce: { required: () => true },
  rotateRefreshToken: () => true,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
  },
  // Fixed keys only silence the "development keys" warning; nothing here outlives the process.
  cookies: { keys: ['herald-oidc-peer-cookie-key'] },
  ttl: {
    AccessToken: 3600, AuthorizationCode: 60, RefreshToken: 86400, Grant: 86400, Session: 3600, Interaction: 600,
  },
})

// Counts by endpoint and outcome, e.g. {"token.authorization_code.200": 1, "revocation.200": 1}.
const stats = {}
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/_peer/stats') {
    ctx.body = stats
    return
  }
  await next()
  let key
  if (ctx.path === '/token') {
    key = `token.${ctx.oidc?.params?.grant_type ?? 'unknown'}.${ctx.status}`
  } else if (ctx.path === '/token/revocation') {
    key = `revocation.${ctx.status}`
  }
  if (key) {
    stats[key] = (stats[key] ?? 0) + 1
    const error = ctx.status >= 400 ? ` ${ctx.body?.error ?? ''} ${ctx.body?.error_description ?? ''}` : ''
    process.stderr.write(`oidc-provider peer: ${key}${error}\n`)
  }
})
provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc-provider peer: ${err.stack}\n`))

server.on('request', provider.callback())

const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

process.stdout.write(`${JSON.stringify({ issuer })}\n`)
