// Stryker's tap-runner hook, loaded in the main thread only; its path is the last argument (stryker.config.mjs).
// Worker threads inherit `-r`, and the hook's exit handler in a lane worker writes that thread's coverage to the
// same file as the main thread's (it is named by the process id): whichever thread exits last wins, and a test
// file whose products used worker lanes would seem to cover only the worker's code.
const { isMainThread } = require("node:worker_threads");
if (isMainThread) require(process.argv[process.argv.length - 1]);
