// The Durable Streams conformance suite (@durable-streams/server-conformance-tests) against a
// running server: MILLSTREAM_URL=http://127.0.0.1:PORT npx vitest run --config vitest.config.mjs
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.MILLSTREAM_URL
if (!baseUrl) {
  throw new Error("set MILLSTREAM_URL to the server under test, e.g. http://127.0.0.1:4437")
}

runConformanceTests({ baseUrl, subscriptions: true, longPollTimeoutMs: 500 })
