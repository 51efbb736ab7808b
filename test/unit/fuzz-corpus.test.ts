import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../../src/core/base/errors';
import { exercise } from '../../fuzz/exercise';

// The fuzzer's regression corpus (written by fuzz/corpus.ts): each damaged model loads and goes through
// the passes, or fails with exactly its recorded one-line error. `npm run fuzz` explores further.
describe('fuzz regression corpus (test/fuzz-corpus/manifest.json)', function () {
  this.timeout(60_000);
  const dir = path.resolve('test/fuzz-corpus');
  const manifest: Array<{ file: string; expect?: 'loads'; error?: string }> = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

  it('covers every kind of damage the fuzzer makes', () => {
    assert.ok(manifest.length >= 18);
    assert.ok(manifest.some((m) => m.expect === 'loads') && manifest.some((m) => m.error));
  });

  for (const m of manifest) {
    it(`${m.file}: ${m.error ? m.error.replace('<file>: ', '') : 'loads, quantizes and prunes in memory'}`, async () => {
      const file = path.join(dir, m.file);
      const before = fs.readFileSync(file);
      try {
        await exercise(file);
        assert.equal(m.expect, 'loads', `expected: ${m.error}`);
      } catch (e) {
        if (!(e instanceof QuantLensError)) throw e;
        assert.equal(e.message.replace(file, '<file>'), m.error);
        assert.ok(!e.message.includes('\n'));
      }
      assert.ok(fs.readFileSync(file).equals(before), 'the input was modified');
    });
  }
});
