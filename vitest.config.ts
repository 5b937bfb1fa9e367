import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // s3rver (the local S3 server the tests start) signs list continuation tokens with a cipher that
    // OpenSSL 3 moved to its legacy provider; the test workers need it enabled.
    execArgv: ['--openssl-legacy-provider'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A poll (what the browser tests wait on: a page's URL after a click, its list after a search) ends as
    // soon as it holds: its timeout is only how long a failure takes to say so. vitest's 1 s is short for a
    // page answering on two cores busy with 14 test files at once.
    expect: { poll: { timeout: 5_000 } },
    // CI also writes a JSON report, from which .ci/run prints a plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
