// Loaded as --extensionTestsPath inside the VS Code server's extension host. There console output goes
// to the browser, not a terminal, so mocha's reporter output is also appended to $QUANTLENS_TEST_OUTPUT,
// which the harness streams. Then the real suite ($QUANTLENS_REAL_TESTS) runs.
const fs = require('fs');
const Module = require('module');
const util = require('util');

const out = process.env.QUANTLENS_TEST_OUTPUT;
const tee = (s) => { if (out) try { fs.appendFileSync(out, s); } catch { /* harness gone */ } };

const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exp = load.apply(this, arguments);
  const Base = exp && exp.reporters && exp.reporters.Base;
  if (Base && typeof Base.consoleLog === 'function' && !Base.__quantlensTee) {
    const orig = Base.consoleLog;
    Base.consoleLog = function (...a) { tee(util.format(...a) + '\n'); return orig.apply(this, a); };
    Base.__quantlensTee = true;
  }
  return exp;
};

exports.run = async function run() {
  try {
    await require(process.env.QUANTLENS_REAL_TESTS).run();
  } catch (e) {
    tee(`\nthe test suite failed: ${(e && e.message) || e}\n`);
    throw e;
  }
};
