// Runs the Node reference server (@durable-streams/server) for interop tests and benchmarks.
// Usage: node reference-server.mjs --port 0 [--data-dir DIR] [--long-poll-timeout-ms 30000]
// Prints one line "listening http://127.0.0.1:PORT" once it accepts connections; stops on SIGTERM.
import { DurableStreamTestServer } from "@durable-streams/server"

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}

const server = new DurableStreamTestServer({
  host: "127.0.0.1",
  port: Number(option("--port", "0")),
  dataDir: option("--data-dir", undefined),
  longPollTimeout: Number(option("--long-poll-timeout-ms", "30000")),
})
const url = await server.start()
console.log(`listening ${typeof url === "string" ? url : server.url}`)

const stop = async () => {
  await server.stop()
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
