// Runs millstream's conformance entry point (conformance.test.mjs) against MILLSTREAM_URL.
// The published suite's own CLI finds no tests under node_modules, so we call its exported
// runConformanceTests from our own test file instead.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["conformance.test.mjs"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fileParallelism: false,
    reporters: ["default"],
  },
})
