import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

/**
 * Shared vitest settings: workspace packages resolve to their TypeScript
 * sources, so tests never run against a stale build.
 */
export const shared: ViteUserConfig = {
  resolve: {
    alias: [
      {
        find: /^@tether\/(protocol|runtime|node|redis|testing)\/(.*)$/,
        replacement: path.join(root, "packages/$1/src/$2.ts")
      }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000
  }
}
