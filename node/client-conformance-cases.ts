// Prints the client-conformance suite's test cases as JSON, in the order its runner runs
// them (tests/test_client_conformance.py matches the runner's output against them).
// Usage: npx tsx --tsconfig client-conformance.tsconfig.json client-conformance-cases.ts SUITE_DIR
import { pathToFileURL } from "node:url"
import { join } from "node:path"

const suiteDir = process.argv[2]
if (!suiteDir) throw new Error("usage: client-conformance-cases.ts SUITE_DIR")
const { loadEmbeddedTestSuites } = await import(
  pathToFileURL(join(suiteDir, "src", "test-cases.ts")).href
)
const suites = loadEmbeddedTestSuites().map((suite: any) => ({
  name: suite.name,
  requires: suite.requires ?? [],
  tests: suite.tests.map((test: any) => ({
    name: test.name,
    skip: test.skip ?? false,
    requires: test.requires ?? [],
    operations: [...(test.setup ?? []), ...test.operations, ...(test.cleanup ?? [])].map(
      (op: any) => ({ action: op.action, expect: op.expect ?? null })
    ),
  })),
}))
process.stdout.write(JSON.stringify(suites))
