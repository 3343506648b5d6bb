// End-to-end tests (`npm run test:e2e`): the real lab, as root. Not part of `npm test`.
export default {
  files: ['test/e2e/**/*.test.ts'],
  extensions: {ts: 'module'},
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: "20m",
  serial: true,
  concurrency: 1,
};
