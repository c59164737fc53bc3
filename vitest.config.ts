import { defineConfig } from "vitest/config"

// The whole suite runs on ioredis 6 (the devDependency `ioredis`); the Redis tests run a second time on
// ioredis 5 (the devDependency `ioredis5`, an npm alias), which the peer range `^5.4 || ^6` also accepts and
// which is what a plain `npm install` gives a project on Effect 3 (see README, Install).
export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "ioredis 6", include: ["test/**/*.test.ts"], env: { IOREDIS_MAJOR: "6" } }
      },
      {
        extends: true,
        resolve: { alias: { ioredis: "ioredis5" } },
        test: { name: "ioredis 5", include: ["test/layers/Redis*.test.ts"], env: { IOREDIS_MAJOR: "5" } }
      }
    ]
  }
})
