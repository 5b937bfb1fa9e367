import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // s3rver (the local S3 server the tests start) signs list continuation tokens with a cipher that
    // OpenSSL 3 moved to its legacy provider; the test workers need it enabled.
    execArgv: ['--openssl-legacy-provider'],
    // vitest runs one file fewer at a time than the machine has cores: on CI's two, one file at a time. Most
    // files wait far more than they compute (a child process, a server, the disk): ten of them took 113 and
    // 152 s one at a time and 78 and 134 s two at a time, for the same CPU time (47-53 s). Each file still
    // runs in a process of its own. Elsewhere vitest's own count (one fewer than the cores) is kept.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A poll (what the browser tests wait on: a page's URL after a click, its list after a search; what the
    // server tests wait on: a connection closed, a slot given back) ends as soon as it holds: its timeout is
    // only how long a failure takes to say so. vitest's 1 s, and 5 s once, are short for a server answering
    // on two cores busy with four test files and whatever else CI runs beside them.
    expect: { poll: { timeout: 20_000 } },
    // CI also writes a JSON report, from which .ci/run prints a plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
